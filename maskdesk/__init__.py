"""maskdesk: Mask R-CNN pre-labeling and raster-mask review, exported as COCO JSON."""

__version__ = "0.1.0"
