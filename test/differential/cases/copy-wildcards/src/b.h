bh
