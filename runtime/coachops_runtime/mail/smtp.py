"""Sending one message over SMTP (aiosmtplib), with failures sorted into final or not."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from coachops_runtime.kit.settings import Settings


class DeliveryError(Exception):
    """The server did not take the message. ``final``: retrying cannot help."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                use_tls=settings.smtp_tls == "tls",
                start_tls=settings.smtp_tls == "starttls",
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            # A 5xx for the address is the server's last word on it; 4xx may pass later.
            final = all(refusal.code >= 500 for refusal in error.recipients)
            raise DeliveryError(_reason(error), final=final) from error
        except aiosmtplib.SMTPDataError as error:
            raise DeliveryError(_reason(error), final=error.code >= 500) from error
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            # Connection, TLS, authentication and sender problems are the deployment's, not
            # this message's: retried, they succeed once the server or settings are fixed.
            raise DeliveryError(_reason(error), final=False) from error
