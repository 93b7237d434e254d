"""The web chat app: its settings, the staged build, the private site bucket behind CloudFront, config.json."""
