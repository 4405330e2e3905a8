"""The adapters by channel name, built once with the configured provider base URLs.

E-mail replies go out through the runtime's SMTP settings, which only the worker passes
(``runtime``); the API side receives e-mail without them.
"""

from __future__ import annotations

from coachops_runtime.channels.adapter import Adapter
from coachops_runtime.channels.email.adapter import EmailAdapter
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.channels.slack.adapter import SlackAdapter
from coachops_runtime.channels.sms.adapter import SmsAdapter
from coachops_runtime.channels.telegram.adapter import TelegramAdapter
from coachops_runtime.channels.whatsapp.adapter import WhatsAppAdapter
from coachops_runtime.kit.settings import Settings
from coachops_runtime.mail.smtp import SmtpSender


def adapters(settings: ChannelSettings, runtime: Settings | None = None) -> dict[str, Adapter]:
    links = settings.webhook_base_url or (runtime.public_base_url if runtime else "")
    return {
        "telegram": TelegramAdapter(settings.telegram_api),
        "slack": SlackAdapter(settings.slack_api),
        "sms": SmsAdapter(settings.twilio_api, settings.webhook_base_url),
        "whatsapp": WhatsAppAdapter(settings.whatsapp_api),
        "email": EmailAdapter(
            SmtpSender(runtime) if runtime is not None else None, links, settings.key
        ),
    }
