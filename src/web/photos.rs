//! Photos from the tablet's camera at the opening: the upload (multipart, its size limited, its
//! bytes decoded to prove they are a JPEG or PNG whatever the sender says), kept with the bag
//! through the desk's `AddPhoto` command, and served back only as that image type, under a
//! policy that lets nothing in it run. Must not import egui or wgpu; the archive is read here,
//! written only by the desk.

use std::io::Cursor;

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Lang, Shared, answer_change, forbidden, session, to_login};
use crate::desk::{Command, DeskError, PhotoBytes};

/// The largest photo taken: a 12-megapixel phone camera's JPEG is 3 to 6 MB.
pub const MAX_PHOTO_BYTES: usize = 12 << 20;
/// The largest side, in pixels.
const MAX_SIDE: u32 = 12_000;

/// A photo checked: its type as its bytes decode, its size in pixels.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Decodes `bytes` whole (a hostile or broken file fails here, not in a browser): a JPEG or PNG
/// of sane size, or why not.
pub fn check(bytes: &[u8]) -> Result<Checked, (StatusCode, String)> {
    let unsupported = |what: &str| (StatusCode::UNSUPPORTED_MEDIA_TYPE, what.to_owned());
    if bytes.is_empty() {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, "no photo in the form".into()));
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a photo is at most {} MB", MAX_PHOTO_BYTES >> 20),
        ));
    }
    let mut r = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| unsupported("not an image"))?;
    let mime = match r.format() {
        Some(image::ImageFormat::Jpeg) => "image/jpeg",
        Some(image::ImageFormat::Png) => "image/png",
        _ => return Err(unsupported("a photo must be a JPEG or PNG image")),
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(768 << 20);
    r.limits(limits);
    let img = r.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("a photo is at most {MAX_SIDE} pixels a side"))
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, format!("the photo does not decode: {e}")),
    })?;
    Ok(Checked { mime, width: img.width(), height: img.height() })
}

/// `POST /bag/{id}/photos`: fields `csrf` and `photo`.
pub async fn upload(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    mut form: Multipart,
) -> Response {
    let lang = Lang::of(&headers);
    let s = match session(&web, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let htmx = headers.contains_key("hx-request");
    let (mut csrf, mut photo) = (None, None);
    loop {
        match form.next_field().await {
            Ok(None) => break,
            Ok(Some(f)) => {
                let name = f.name().unwrap_or_default().to_owned();
                match f.bytes().await {
                    Ok(b) if name == "csrf" => csrf = Some(String::from_utf8_lossy(&b).into_owned()),
                    Ok(b) if name == "photo" => photo = Some(b),
                    Ok(_) => {}
                    Err(e) => return (e.status(), e.body_text()).into_response(),
                }
            }
            Err(e) => return (e.status(), e.body_text()).into_response(),
        }
    }
    if csrf.as_deref() != Some(s.csrf.as_str()) {
        tracing::warn!(operator = %s.operator, bag = id, "web photo without a valid form token: refused");
        return forbidden(lang, Some(&s), "no valid form token");
    }
    let bytes = photo.unwrap_or_default();
    let outcome = match tokio::task::spawn_blocking({
        let b = bytes.clone();
        move || check(&b)
    })
    .await
    {
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Ok(Err(e)) => Err(e),
        Ok(Ok(c)) => match web.open(&s, id).await {
            Err(e) => Err((StatusCode::NOT_FOUND, e.to_string())),
            Ok(key) => {
                let cmd = Command::AddPhoto {
                    bag: key,
                    mime: c.mime.to_owned(),
                    width: c.width,
                    height: c.height,
                    data: PhotoBytes(bytes.to_vec().into()),
                };
                match web.apply(s.station, cmd).await {
                    Ok(_) => Ok(lang.t("照片已保存", "Photo kept")),
                    Err(DeskError::NotLoggedIn) => return to_login(),
                    Err(e @ DeskError::Inspection(_)) => Err((StatusCode::FORBIDDEN, e.to_string())),
                    Err(e) => Err((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
                }
            }
        },
    };
    if let Err((st, why)) = &outcome {
        tracing::warn!(operator = %s.operator, bag = id, status = %st, "web photo refused: {why}");
    }
    answer_change(&web, lang, &s, id, htmx, outcome).await
}

/// `GET /bag/{id}/photo/{sha256}`: the photo as the image type its bytes decoded as, nothing
/// else (no script, no frame, no sniffing).
pub async fn get(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path((id, sha)): Path<(i64, String)>,
) -> Result<Response, Response> {
    session(&web, &headers)?;
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err((StatusCode::BAD_REQUEST, "a photo is named by its SHA-256").into_response());
    }
    let data = web.data.clone();
    let found = tokio::task::spawn_blocking(move || {
        crate::files::store::Store::open_read(&data).and_then(|s| s.photo(id, &sha))
    })
    .await;
    Ok(match found {
        Ok(Ok(Some((mime, bytes)))) if mime == "image/jpeg" || mime == "image/png" => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&mime).expect("a checked type"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            );
            h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
            r
        }
        Ok(Ok(_)) => (StatusCode::NOT_FOUND, "no such photo").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("archive: {e}")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 99]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_photo_is_what_its_bytes_decode_as_and_nothing_else_passes() {
        let jpeg = encoded(image::ImageFormat::Jpeg, 64, 48);
        assert_eq!(check(&jpeg), Ok(Checked { mime: "image/jpeg", width: 64, height: 48 }));
        let png = encoded(image::ImageFormat::Png, 5, 7);
        assert_eq!(check(&png), Ok(Checked { mime: "image/png", width: 5, height: 7 }));
        // Not an image, whatever its name; HTML or SVG pretending; a truncated JPEG; empty.
        assert_eq!(check(b"hello, this is text").unwrap_err().0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            check(b"<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap_err().0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            check(b"<html><script>alert(1)</script>").unwrap_err().0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(check(&png[..png.len() - 20]).unwrap_err().0, StatusCode::UNPROCESSABLE_ENTITY);
        // (A JPEG cut short may still decode, grey where it stops, depending on where the cut
        // falls: the decoder is lenient, phones' JPEGs may carry data past their end marker.)
        assert_eq!(check(b"").unwrap_err().0, StatusCode::UNPROCESSABLE_ENTITY);
        // A PNG whose header claims a 100000-pixel side: refused before it is allocated.
        let mut huge = png.clone();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&huge[12..29]); // the header chunk's checksum, made right again
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(check(&huge).unwrap_err().0, StatusCode::PAYLOAD_TOO_LARGE);
        let big = vec![0xffu8; MAX_PHOTO_BYTES + 1];
        assert_eq!(check(&big).unwrap_err().0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// CRC-32 as PNG uses it (ISO 3309), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
}
