"""SfM stage: photos -> COLMAP sparse model (pycolmap) -> undistorted PINHOLE model and images."""
