//! Compresses a file with the parallel gzip at several levels and prints size and time
//! (a measurement aid for choosing layer compression levels; not part of the build).
use std::io::Write as _;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let data = std::fs::read(&path)?;
    for level in [3, 6] {
        for threads in [1, 2, 3, 2] {
            let t = Instant::now();
            let mut enc = liftoff_layers::pgzip::ParallelGzEncoder::new(Vec::new(), level, threads);
            enc.write_all(&data)?;
            let out = enc.finish()?;
            println!(
                "level {level} threads {threads}: {} bytes ({:.1}%) in {:.3} s {}",
                out.len(),
                100.0 * out.len() as f64 / data.len() as f64,
                t.elapsed().as_secs_f64(),
                liftoff_layers::Digest::of(&out)
            );
        }
    }
    Ok(())
}
