"""SMS through Twilio's Programmable Messaging."""
