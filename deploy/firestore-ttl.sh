#!/usr/bin/env bash
# Firestore's TTL policies, which firebase.json cannot declare: applied with gcloud, once
# per database (idempotent: running it again changes nothing). Each policy's field is
# also exempted from single-field indexing: nothing queries it, and an index on a
# timestamp that only grows is a write hotspot.
#
#   deploy/firestore-ttl.sh                       # the (default) database of the gcloud project
#   DATABASE=staging deploy/firestore-ttl.sh      # a named database
#
# The policies are the code's (cogmora.store.firestore.store.TTL_POLICIES);
# tests/firebase/test_deploy_config.py fails when the two disagree.
set -euo pipefail
DATABASE=${DATABASE:-(default)}

# collection group, field
POLICIES=(
  "txmarks expireAt"
)

for policy in "${POLICIES[@]}"; do
  read -r group field <<<"$policy"
  gcloud firestore fields ttls update "$field" --collection-group="$group" \
    --database="$DATABASE" --enable-ttl
  gcloud firestore indexes fields update "$field" --collection-group="$group" \
    --database="$DATABASE" --disable-indexes
done
