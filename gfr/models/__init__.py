"""Models: backbone registry, the feature cache, the classification head, fine-tuning."""
