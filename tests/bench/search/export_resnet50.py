#!/usr/bin/python3
"""Exports torchvision's ResNet-50 (random weights) to ONNX for the search
benchmark, with Debian's PyTorch. Usage: export_resnet50.py OUT.onnx"""
import sys

import torch
import torchvision

model = torchvision.models.resnet50(weights=None).train()
torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), sys.argv[1], input_names=["input"],
                  output_names=["output"], opset_version=13, do_constant_folding=False,
                  training=torch.onnx.TrainingMode.TRAINING)
print(sys.argv[1], sum(p.numel() for p in model.parameters()), "parameters")
