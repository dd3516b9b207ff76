//! Worlds and manifests shared by the command tests.

use std::path::Path;

use crate::support::{Scratch, scratch, write};

/// A store plan with two manual stages, an API whose staging already ran (the trap), a
/// release branch, and a plan whose build failed.
pub const SHOP: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    name: Shop
    plans:
      - key: APP
        stages:
          - { name: Build }
          - { name: Deploy Staging, manual: true }
          - { name: Smoke }
          - { name: Deploy Prod, manual: true }
          - { name: Verify }
        branches:
          - name: release/1.0
            key: APP1
            builds:
              - { number: 1, state: { pausedBefore: Deploy Staging } }
        builds:
          - { number: 41, state: complete }
          - { number: 42, labels: [rc], state: { pausedBefore: Deploy Staging } }
      - key: API
        stages:
          - { name: Build }
          - { name: Deploy Staging, manual: true }
          - { name: Deploy Prod, manual: true }
        builds:
          - { number: 7, state: { pausedBefore: Deploy Prod } }
      - key: WEB
        stages:
          - { name: Build }
          - { name: Deploy Staging, manual: true }
        builds:
          - { number: 3, state: { failedAt: Build } }
";

pub const MANIFEST: &str = "# yaml-language-server: $schema=../schemas/promotion.v1.schema.json
apiVersion: bamboo-promote/v1
kind: Promotion
metadata:
  name: shop
spec:
  defaults:
    plan: SHOP-APP
  targets:
    - id: app-staging
      build: { label: rc }
      stage: Deploy Staging
    - id: branch-staging
      branch: release/1.0
      stage: Deploy Staging
    - id: api-staging
      plan: SHOP-API
      build: 7
      stage: Deploy Staging
";

/// A scratch folder holding `text` as its one manifest file.
pub fn manifests(text: &str) -> Scratch {
    let dir = scratch("manifests");
    write(&dir, "shop.yaml", text);
    dir
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
