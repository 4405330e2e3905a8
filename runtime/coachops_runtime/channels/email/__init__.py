"""E-mail as a conversation channel: Mailgun inbound routes in, SMTP out."""
