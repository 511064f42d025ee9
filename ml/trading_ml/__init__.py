"""Training job of the ml-predictor: features from bars, LightGBM, walk-forward validation, ONNX export."""
