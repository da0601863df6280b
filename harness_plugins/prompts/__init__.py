"""What the explainer reads: chat rendering, vector slots, and subject vectors mapped into the explainer's space."""
