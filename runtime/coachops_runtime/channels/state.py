"""The channel settings and adapters one app uses, made on first use and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from coachops_runtime.channels.adapter import Adapter
from coachops_runtime.channels.registry import adapters
from coachops_runtime.channels.settings import ChannelSettings


@dataclass(frozen=True)
class Channels:
    settings: ChannelSettings
    adapters: dict[str, Adapter]


def channels_of(request: Request) -> Channels:
    state = request.app.state
    channels = getattr(state, "channels", None)
    if not isinstance(channels, Channels):
        settings = ChannelSettings()
        channels = Channels(settings, adapters(settings))
        state.channels = channels
    return channels
