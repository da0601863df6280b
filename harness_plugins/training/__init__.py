"""The one LoRA training loop (`lora`) and its uses (trained explainers; preferences keep theirs beside the type)."""
