"""PoSFeat: weakly supervised local features (description net, then detection net) from camera poses."""
