# The debian base, built the same way by every builder: bench/data/debian-rootfs.tar is copied in as rootfs.tar.
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["bash"]
