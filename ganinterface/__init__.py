"""ganinterface: look inside StyleGAN-family generators and edit what they make."""

__version__ = "0.1.0"
