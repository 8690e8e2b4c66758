"""kinspect: triage Keras/TensorFlow model files without trusting them."""

__version__ = "0.1.0"
