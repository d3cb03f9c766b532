//! Run state in S3: plans by name, the resolved plan of a run, per-wave launch and
//! progress records. Keeping these in S3 keeps Step Functions payloads O(waves).
//!
//! JSON records are read and written by their [`Record`] (`drplan_core::contract::keys`),
//! which names the key and the type stored there.

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;
use serde::de::DeserializeOwned;

use drplan_core::contract::Record;

use crate::FunctionError;

/// The largest run record drplan reads back (a 4,000-server wave's records are a few
/// MiB): a larger object is not drplan's and is refused before its body is read.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct RunStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl RunStore {
    pub fn new(s3: aws_sdk_s3::Client, bucket: String) -> Self {
        Self { s3, bucket }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Every key under `prefix`, over all pages.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, FunctionError> {
        let pages: Vec<_> = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| FunctionError::from_sdk("S3 ListObjectsV2", e))?;
        Ok(pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|object| object.key().map(str::to_owned))
            .collect())
    }

    /// Deletes the object (no error when it is already gone).
    pub async fn delete(&self, key: &str) -> Result<(), FunctionError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("S3 DeleteObject", e))?;
        Ok(())
    }

    /// Deletes the object only if it is unchanged since read (If-Match: the ETag).
    /// Returns false, having deleted nothing, when it changed or is gone.
    pub async fn delete_if(&self, key: &str, etag: &str) -> Result<bool, FunctionError> {
        match self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 404 | 409 | 412)) =>
            {
                Ok(false)
            }
            Err(e) => Err(FunctionError::from_sdk("S3 DeleteObject", e)),
        }
    }

    /// The object's bytes and ETag, or `None` when there is no such key. Objects over
    /// [`MAX_RECORD_BYTES`] are refused before their body is read.
    async fn get_object(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, FunctionError> {
        self.get_object_capped(key, MAX_RECORD_BYTES).await
    }

    /// Like [`Self::get_object`], refusing objects over `max_bytes` (by their
    /// Content-Length, before reading the body).
    async fn get_object_capped(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(Vec<u8>, String)>, FunctionError> {
        let response = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(FunctionError::from_sdk("S3 GetObject", e)),
        };
        let size = response.content_length().unwrap_or_default().max(0) as u64;
        if size > max_bytes {
            return Err(FunctionError::TooLarge {
                what: format!("s3://{}/{key}", self.bucket),
                size,
                limit: max_bytes,
            });
        }
        let etag = response.e_tag().unwrap_or_default().to_owned();
        let bytes = response
            .body
            .collect()
            .await
            .map_err(|e| FunctionError::AwsCallFailed {
                operation: "S3 GetObject",
                code: "BodyRead".into(),
                message: format!("reading s3://{}/{key}: {e}", self.bucket),
            })?;
        Ok(Some((bytes.to_vec(), etag)))
    }

    /// The object's text, or `None` when there is no such key.
    pub async fn get_text(&self, key: &str) -> Result<Option<String>, FunctionError> {
        let Some((bytes, _)) = self.get_object(key).await? else {
            return Ok(None);
        };
        String::from_utf8(bytes).map(Some).map_err(|_| {
            FunctionError::InvalidInput(format!("s3://{}/{key} is not UTF-8 text", self.bucket))
        })
    }

    /// The object's text, refused unread when it is over `max_bytes`.
    pub async fn get_text_capped(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<String>, FunctionError> {
        let Some((bytes, _)) = self.get_object_capped(key, max_bytes).await? else {
            return Ok(None);
        };
        String::from_utf8(bytes).map(Some).map_err(|_| {
            FunctionError::InvalidInput(format!("s3://{}/{key} is not UTF-8 text", self.bucket))
        })
    }

    /// The record, or `None` when there is no such object.
    pub async fn read<T: DeserializeOwned>(
        &self,
        record: &Record<T>,
    ) -> Result<Option<T>, FunctionError> {
        self.get_json(record.key()).await
    }

    /// The record; a missing object is an error (the run's earlier steps should have
    /// written it).
    pub async fn require<T: DeserializeOwned>(
        &self,
        record: &Record<T>,
    ) -> Result<T, FunctionError> {
        self.require_json(record.key()).await
    }

    pub async fn write<T: Serialize>(
        &self,
        record: &Record<T>,
        value: &T,
    ) -> Result<(), FunctionError> {
        self.put_json(record.key(), value).await
    }

    /// Writes the record only if it is still as last read (see [`Self::get_text_versioned`]):
    /// absent (`expected_etag` `None`) or unchanged. Returns the written object's ETag, or
    /// `None`, having written nothing, when another writer got there first.
    pub async fn write_if<T: Serialize>(
        &self,
        record: &Record<T>,
        value: &T,
        expected_etag: Option<&str>,
    ) -> Result<Option<String>, FunctionError> {
        let text = serde_json::to_string(value).map_err(|e| {
            FunctionError::InvalidInput(format!("cannot serialise {}: {e}", record.key()))
        })?;
        self.put_text_if(record.key(), text, expected_etag).await
    }

    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, FunctionError> {
        match self.get_text(key).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                FunctionError::InvalidInput(format!(
                    "s3://{}/{key} is not what drplan wrote: {e}",
                    self.bucket
                ))
            }),
        }
    }

    /// Like `get_json`, but a missing object is an error: the run's earlier
    /// steps should have written it.
    async fn require_json<T: DeserializeOwned>(&self, key: &str) -> Result<T, FunctionError> {
        self.get_json(key).await?.ok_or_else(|| {
            FunctionError::InvalidInput(format!(
                "s3://{}/{key} is missing; the run's earlier steps did not write it",
                self.bucket
            ))
        })
    }

    pub async fn put_text(
        &self,
        key: &str,
        text: String,
        content_type: &str,
    ) -> Result<(), FunctionError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(text.into_bytes()))
            .send()
            .await
            .map_err(|e| FunctionError::from_sdk("S3 PutObject", e))?;
        Ok(())
    }

    /// The object's text and its ETag, for a later [`Self::write_if`]; `None` when
    /// there is no such key.
    pub async fn get_text_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(String, String)>, FunctionError> {
        let Some((bytes, etag)) = self.get_object(key).await? else {
            return Ok(None);
        };
        // Not UTF-8 is still an object that a conditional write can replace.
        Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), etag)))
    }

    /// Writes the JSON text only if the object is still as last read: absent
    /// (`expected_etag` `None`, If-None-Match: *) or unchanged (If-Match: the ETag).
    /// Returns the new ETag, or `None`, having written nothing, when another writer got
    /// there first.
    pub async fn put_text_if(
        &self,
        key: &str,
        text: String,
        expected_etag: Option<&str>,
    ) -> Result<Option<String>, FunctionError> {
        let request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(text.into_bytes()));
        let request = match expected_etag {
            None => request.if_none_match("*"),
            Some(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(written) => Ok(Some(written.e_tag().unwrap_or_default().to_owned())),
            // 412 Precondition Failed, or 409 when a concurrent conditional write won.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    matches!(
                        s.code(),
                        Some("PreconditionFailed" | "ConditionalRequestConflict")
                    )
                }) || e
                    .raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(None)
            }
            Err(e) => Err(FunctionError::from_sdk("S3 PutObject", e)),
        }
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), FunctionError> {
        let text = serde_json::to_string(value)
            .map_err(|e| FunctionError::InvalidInput(format!("cannot serialise {key}: {e}")))?;
        self.put_text(key, text, "application/json").await
    }
}
