"""Relation heads inside nnU-Net v2: a trainer, and relunet's predict / calibrate / review on its models.

Optional: only `relunet.nnunet.trainer`, `launch`, `inference` and `workflows` import nnunetv2
(`pip install -e '.[nnunet]'`); `installed` and `model_folder` work without it.
"""
