//! Prompts decoded and resampled once, shared by every call that plays them.
//!
//! An IVR plays the same few prompts to every caller. Streaming each play from its file costs every
//! call a decoder, a resampler and their buffers, touched every tick: at 1000 calls those are cache
//! misses that dominate a play graph's cost. Cached, a play is a copy from one shared buffer at the
//! call's rate (SEMS's prompt collections do the same). Files longer than `max_seconds`, and files
//! that do not decode cleanly, are streamed as before. An entry is reused only while the file's size
//! and modification time are unchanged; the least recently used entries go when the cache is full.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rms_filters::nodes::file_player::{decode_file, FileError, SUPPORTED_RATES};
use rms_filters::nodes::resampler::resample_all;

/// Limits of a [`PromptCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptCacheLimits {
    /// Total decoded bytes kept (2 bytes a sample).
    pub max_bytes: usize,
    /// Longer files are streamed, not cached.
    pub max_seconds: u32,
}

impl Default for PromptCacheLimits {
    fn default() -> Self {
        Self { max_bytes: 64 << 20, max_seconds: 30 }
    }
}

struct Entry {
    samples: Arc<[i16]>,
    modified: Option<SystemTime>,
    len: u64,
    last_used: u64,
}

#[derive(Default)]
pub struct PromptCache {
    limits: PromptCacheLimits,
    entries: HashMap<(PathBuf, u32), Entry>,
    /// Files found too long or not cleanly decodable, by size and mtime, so they are not decoded
    /// again on every play (a long MP3 would be, up to `max_seconds`, each time).
    streamed: HashMap<PathBuf, (Option<SystemTime>, u64)>,
    bytes: usize,
    uses: u64,
}

impl PromptCache {
    pub fn new(limits: PromptCacheLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// `path` as mono samples at `rate`, from the cache or decoded now. `Ok(None)`: stream it instead
    /// (too long, too big for the cache, or not cleanly decodable: the player reports the details).
    pub fn get(&mut self, path: &Path, rate: u32) -> Result<Option<Arc<[i16]>>, FileError> {
        let meta = std::fs::metadata(path).map_err(|e| FileError::Open { path: path.to_owned(), kind: e.kind() })?;
        let (modified, len) = (meta.modified().ok(), meta.len());
        self.uses += 1;
        let key = (path.to_owned(), rate);
        if let Some(e) = self.entries.get_mut(&key) {
            if e.modified == modified && e.len == len {
                e.last_used = self.uses;
                return Ok(Some(e.samples.clone()));
            }
        }
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.samples.len() * 2;
        }
        if self.limits.max_bytes == 0 || self.streamed.get(path) == Some(&(modified, len)) {
            return Ok(None);
        }
        let Some(samples) = self.decode(path, rate) else {
            // Bounded: forgetting only costs one more decode attempt per file.
            if self.streamed.len() >= 4096 {
                self.streamed.clear();
            }
            self.streamed.insert(path.to_owned(), (modified, len));
            return Ok(None);
        };
        let bytes = samples.len() * 2;
        while self.bytes + bytes > self.limits.max_bytes {
            self.evict_one();
        }
        let samples: Arc<[i16]> = samples.into();
        self.bytes += bytes;
        self.entries.insert(key, Entry { samples: samples.clone(), modified, len, last_used: self.uses });
        Ok(Some(samples))
    }

    /// The whole file at `rate`, if it decodes cleanly and fits the limits.
    fn decode(&self, path: &Path, rate: u32) -> Option<Vec<i16>> {
        let max_rate = SUPPORTED_RATES.iter().copied().max().unwrap_or(48000);
        let max_in = u64::from(self.limits.max_seconds) * u64::from(max_rate);
        let (info, decoded) = decode_file(path, max_in).ok()??;
        if decoded.len() as u64 > u64::from(self.limits.max_seconds) * u64::from(info.rate) {
            return None;
        }
        let samples = resample_all(&decoded, info.rate, rate).ok()?;
        (samples.len() * 2 <= self.limits.max_bytes).then_some(samples)
    }

    /// Decoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_one(&mut self) {
        let Some(key) = self.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else {
            return;
        };
        if let Some(e) = self.entries.remove(&key) {
            self.bytes -= e.samples.len() * 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rms_filters::testing::{test_signal, write_wav};

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rms-prompt-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn decodes_once_shares_and_notices_a_changed_file() {
        let path = temp("a.wav");
        write_wav(&path, 16000, &test_signal(16000, 16000, 3000.0)).unwrap();
        let mut cache = PromptCache::new(PromptCacheLimits::default());
        let a = cache.get(&path, 8000).unwrap().unwrap();
        assert_eq!(a.len(), 8000);
        let b = cache.get(&path, 8000).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "second play shares the first decode");
        assert_eq!(cache.bytes(), 16000);
        // Rewritten with another length: decoded again.
        write_wav(&path, 16000, &test_signal(16000, 8000, 3000.0)).unwrap();
        let c = cache.get(&path, 8000).unwrap().unwrap();
        assert_eq!(c.len(), 4000);
        assert_eq!((cache.len(), cache.bytes()), (1, 8000));
    }

    #[test]
    fn long_corrupt_or_missing_files_are_not_cached() {
        let long = temp("long.wav");
        write_wav(&long, 8000, &vec![0; 8000 * 3]).unwrap();
        let mut cache = PromptCache::new(PromptCacheLimits { max_bytes: 1 << 20, max_seconds: 2 });
        assert!(cache.get(&long, 8000).unwrap().is_none());
        let truncated = temp("truncated.wav");
        write_wav(&truncated, 8000, &vec![100; 8000]).unwrap();
        let bytes = std::fs::read(&truncated).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.get(&truncated, 8000).unwrap().is_none(), "streamed, so the player reports it");
        assert_eq!(cache.streamed.len(), 2, "both remembered, not decoded again on the next play");
        assert!(matches!(cache.get(&temp("missing.wav"), 8000), Err(FileError::Open { .. })));
        assert!(cache.is_empty());
    }

    #[test]
    fn least_recently_used_prompts_go_first() {
        let mut cache = PromptCache::new(PromptCacheLimits { max_bytes: 2 * 16000, max_seconds: 30 });
        let paths: Vec<PathBuf> = (0..3).map(|i| temp(&format!("p{i}.wav"))).collect();
        for p in &paths {
            write_wav(p, 8000, &vec![7; 8000]).unwrap();
        }
        cache.get(&paths[0], 8000).unwrap();
        cache.get(&paths[1], 8000).unwrap();
        cache.get(&paths[0], 8000).unwrap();
        cache.get(&paths[2], 8000).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.entries.contains_key(&(paths[0].clone(), 8000)));
        assert!(!cache.entries.contains_key(&(paths[1].clone(), 8000)), "p1 was the least recently used");
    }
}
