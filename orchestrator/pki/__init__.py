"""Certificates, tokens and kubeconfigs for a lab (`ketch pki`)."""
