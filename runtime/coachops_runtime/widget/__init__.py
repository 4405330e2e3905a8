"""The web channel's embeddable chat widget: its script and the CORS of the end-user API."""
