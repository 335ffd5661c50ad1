//! A small deterministic random number generator (xoshiro256**, seeded by SplitMix64) with the
//! distributions the synthetic scanner needs. Hand-written on purpose: a seed must give the same
//! bag on every platform and every future version, which general-purpose crates do not promise.
//!
//! Must not import: egui, wgpu, tokio.

#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Rng { s: [next(), next(), next(), next()], spare_normal: None }
    }

    /// An independent stream derived from this seed and a label.
    pub fn fork(&mut self, label: u64) -> Rng {
        Rng::new(self.next_u64() ^ label.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.int(0, items.len() as i64 - 1) as usize]
    }

    /// Standard normal (Box-Muller, both values used).
    pub fn normal(&mut self) -> f64 {
        if let Some(v) = self.spare_normal.take() {
            return v;
        }
        let u1 = self.f64().max(f64::MIN_POSITIVE);
        let u2 = self.f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare_normal = Some(r * s);
        r * c
    }

    /// Standard normal by the ziggurat method (Marsaglia and Tsang, 2000: 128 layers, one
    /// 64-bit draw for 99 % of samples): for the detector's noise, where millions are drawn a
    /// bag and Box-Muller's logarithm and sine were most of the readout's time. Its own
    /// sequence: [`Rng::normal`] is unchanged (the bag layouts drawn with it stay as they were).
    #[inline]
    pub fn gauss(&mut self) -> f64 {
        let z = ziggurat();
        loop {
            let u = self.next_u64();
            let i = (u & 127) as usize;
            // A signed 32-bit draw, as the method's integer test has it.
            let h = (u >> 32) as u32 as i32 as i64;
            if h.abs() < z.k[i] {
                return h as f64 * z.w[i];
            }
            let x = h as f64 * z.w[i];
            if i == 0 {
                // The tail beyond R.
                loop {
                    let a = -self.f64().max(f64::MIN_POSITIVE).ln() / ZIG_R;
                    let b = -self.f64().max(f64::MIN_POSITIVE).ln();
                    if b + b >= a * a {
                        return if h > 0 { ZIG_R + a } else { -ZIG_R - a };
                    }
                }
            }
            if z.f[i] + self.f64() * (z.f[i - 1] - z.f[i]) < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// Poisson with mean `lambda`: exact (Knuth) below 30, normal approximation above (the
    /// difference is far below the detector's own noise there).
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda <= 0.0 {
            return 0.0;
        }
        if lambda < 30.0 {
            let l = (-lambda).exp();
            let mut k = 0.0;
            let mut p = 1.0;
            loop {
                p *= self.f64();
                if p <= l {
                    return k;
                }
                k += 1.0;
            }
        }
        (lambda + lambda.sqrt() * self.normal()).max(0.0).round()
    }
}

/// Where the ziggurat's base layer ends, and the area of each layer.
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// The ziggurat's tables: per layer the integer bound of the fast test, the scale from the
/// 32-bit draw to x, and the density at the layer's edge.
struct Ziggurat {
    k: [i64; 128],
    w: [f64; 128],
    f: [f64; 128],
}

fn ziggurat() -> &'static Ziggurat {
    static Z: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    Z.get_or_init(|| {
        let m = 2_147_483_648.0f64;
        let (mut d, mut t) = (ZIG_R, ZIG_R);
        let q = ZIG_V / (-0.5 * d * d).exp();
        let mut z = Ziggurat { k: [0; 128], w: [0.0; 128], f: [0.0; 128] };
        z.k[0] = ((d / q) * m) as i64;
        z.k[1] = 0;
        z.w[0] = q / m;
        z.w[127] = d / m;
        z.f[0] = 1.0;
        z.f[127] = (-0.5 * d * d).exp();
        for i in (1..=126).rev() {
            d = (-2.0 * (ZIG_V / d + (-0.5 * d * d).exp()).ln()).sqrt();
            z.k[i + 1] = ((d / t) * m) as i64;
            t = d;
            z.f[i] = (-0.5 * d * d).exp();
            z.w[i] = d / m;
        }
        z
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_sane_moments() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
        let mut r = Rng::new(1);
        let n = 20000;
        for lambda in [3.0, 400.0] {
            let xs: Vec<f64> = (0..n).map(|_| r.poisson(lambda)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean / lambda - 1.0).abs() < 0.03, "{lambda}: mean {mean}");
            assert!((var / lambda - 1.0).abs() < 0.06, "{lambda}: var {var}");
        }
        assert!((0..1000).all(|_| (0.0..1.0).contains(&r.f64())));
    }

    /// The ziggurat's normals against the normal distribution: moments, tail fractions and
    /// the largest gap between the sample's CDF and the normal's (Kolmogorov-Smirnov).
    #[test]
    fn the_ziggurat_draws_standard_normals() {
        let mut r = Rng::new(11);
        let n = 400_000;
        let mut xs: Vec<f64> = (0..n).map(|_| r.gauss()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
        // Beyond 2 and 3.5 sigma (3.5 is past the base layer's edge: the tail's own sampler).
        for (at, p) in [(2.0, 0.045_500), (3.5, 0.000_465)] {
            let f = xs.iter().filter(|x| x.abs() > at).count() as f64 / n as f64;
            assert!((f / p - 1.0).abs() < 0.12, "beyond {at}: {f} against {p}");
        }
        xs.sort_by(f64::total_cmp);
        // The normal CDF by the complementary error function's series (Abramowitz-Stegun 7.1.26).
        let cdf = |x: f64| {
            let z = x.abs() / std::f64::consts::SQRT_2;
            let t = 1.0 / (1.0 + 0.327_591_1 * z);
            let poly = t
                * (0.254_829_592
                    + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
            let erfc = poly * (-z * z).exp();
            if x >= 0.0 { 1.0 - 0.5 * erfc } else { 0.5 * erfc }
        };
        let d = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| (cdf(x) - (i as f64 + 0.5) / n as f64).abs())
            .fold(0.0, f64::max);
        // The 1 % critical value for n = 400,000 is 1.63 / sqrt(n) = 0.0026.
        assert!(d < 0.0026, "KS distance {d}");
        let mut a = Rng::new(5);
        let mut b = Rng::new(5);
        assert!((0..1000).all(|_| a.gauss() == b.gauss()));
    }
}
