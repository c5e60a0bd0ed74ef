"""Transferability estimators: score a pre-trained model on a target task without training."""
