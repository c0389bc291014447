"""Model wrappers of the model stages (YOLO, SAM, CLIP, a VLM client) and the weights-free mask proposer."""
