#!/usr/bin/env bash
# Install the real peers the tests use: DCMTK (modality), PostgreSQL (scaled mode), Chromium
# (browser tests), dicom3tools and pixelmed-apps (dciodvfy and DicomSRValidator check the AI's
# DICOM outputs), Orthanc with its DICOMweb plugin (the reference DICOMweb server and the
# receiving PACS), npm (scripts/install-viewer.sh fetches the OHIF viewer with it).
# Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -f /usr/share/java/pixelmed.jar ] || need+=(pixelmed-apps)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
if [ ${#need[@]} -eq 0 ]; then
  echo "system dependencies present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
