"""Training data: synthetic speech+motion corpus, emotion texts, styles, fitted real clips, loader."""
