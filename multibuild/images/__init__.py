"""The local build image: a manylinux-style image made only from Debian packages and source
packages, for the container route where the official manylinux images cannot be pulled
(`python -m multibuild image build`; README.rst, "Container builds here")."""
