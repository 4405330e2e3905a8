"""WhatsApp Business Cloud API."""
