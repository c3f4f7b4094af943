"""Training: corpora, augmentation, codec degradations, the trainer (single or torchrun DDP), recipes, export.

Inference code never imports this package; it reads exported weights through nsac.pretrained.
"""
