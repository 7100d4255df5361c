"""Pages and htmx endpoints of the rollout app, one module per concept."""
