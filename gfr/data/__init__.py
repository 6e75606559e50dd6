"""Data: CelebA reader, the split manifest, image decoding, face finding, synthetic data."""
