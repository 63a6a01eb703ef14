"""Population analysis stage: fixed points, Jacobian spectra, PCA and tangling."""
