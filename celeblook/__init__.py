"""CelebrityLook: face inversion and text editing with MobileStyleGAN and CLIP, on the device."""

__version__ = "0.1.0"
