"""Geometry shared by every stage: the pixel convention, epipolar geometry and relative pose.

Conventions (the same in every matchforge module):

- ``T_cw`` / ``T_0to1`` are 4x4 **world->camera** (camera0->camera1) poses:
  ``X_cam = T_cw[:3, :3] @ X_world + T_cw[:3, 3]``.
- ``K`` is the 3x3 PINHOLE intrinsic matrix of the image it is used with, in pixels.
- 2D points are in **matchforge pixels**, COLMAP's convention: :mod:`matchforge.geometry.pixels`.
- Depths and translations are in SfM units (COLMAP's arbitrary gauge) unless a stage says otherwise.
"""
