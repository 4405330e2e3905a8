"""Telegram Bot API: webhooks with ``secret_token``, replies with ``sendMessage``."""
