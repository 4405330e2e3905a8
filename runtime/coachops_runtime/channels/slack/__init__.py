"""Slack Events API in, ``chat.postMessage`` out."""
