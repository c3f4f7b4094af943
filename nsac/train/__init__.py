"""Training: corpora and augmentation, codec degradations, the trainer (one process or torchrun DDP), recipes, export.

Inference code never imports this package; it reads exported weights through nsac.pretrained.
"""
