//! Work on worker threads whose results are handed back in submission order.
//!
//! Used by the parallel gzip ([`crate::pgzip`]) and the segmented gzip ([`crate::segment`]):
//! jobs are numbered as submitted, run on up to `threads` threads (inline with one), and each
//! result is given to the caller's `emit` only once every earlier one was. Which thread ran
//! which job changes only the speed, never what is emitted.

use std::collections::BTreeMap;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What a worker does with one job.
pub(crate) type Work<J, R> = Arc<dyn Fn(J) -> io::Result<R> + Send + Sync>;

/// An ordered pool: [`submit`](Ordered::submit) jobs, [`finish`](Ordered::finish) to emit
/// the rest.
pub(crate) struct Ordered<J: Send + 'static, R: Send + 'static> {
    work: Work<J, R>,
    pool: Option<Pool<J, R>>,
    next_submit: usize,
    next_emit: usize,
    /// Results that arrived before an earlier one.
    ready: BTreeMap<usize, R>,
}

/// Worker threads fed through a bounded queue; results come back tagged with the job number.
struct Pool<J, R> {
    jobs: Option<SyncSender<(usize, J)>>,
    results: Receiver<(usize, io::Result<R>)>,
    workers: Vec<JoinHandle<()>>,
    limit: usize,
}

impl<J: Send + 'static, R: Send + 'static> Pool<J, R> {
    fn new(work: &Work<J, R>, threads: usize, per_thread: usize) -> Pool<J, R> {
        let limit = threads * per_thread.max(1);
        let (jobs, queue) = sync_channel::<(usize, J)>(limit);
        let (done, results) = sync_channel(limit);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let (queue, done, work) = (Arc::clone(&queue), done.clone(), Arc::clone(work));
                std::thread::spawn(move || {
                    loop {
                        // The lock is held only to take the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        let Ok((index, job)) = job else { return };
                        if done.send((index, work(job))).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            results,
            workers,
            limit,
        }
    }
}

impl<J, R> Drop for Pool<J, R> {
    fn drop(&mut self) {
        // Closing the queue ends the workers once the results they hold are taken or dropped.
        self.jobs = None;
        while self.results.recv().is_ok() {}
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> Ordered<J, R> {
    /// `threads` 0 or 1: every job runs inline, in `submit`. At most `per_thread` jobs per
    /// thread are submitted but not yet emitted (the bound on the memory in flight).
    pub(crate) fn new(work: Work<J, R>, threads: usize, per_thread: usize) -> Self {
        let pool = (threads > 1).then(|| Pool::new(&work, threads, per_thread));
        Ordered {
            work,
            pool,
            next_submit: 0,
            next_emit: 0,
            ready: BTreeMap::new(),
        }
    }

    /// Runs `job` (inline, or on the pool) and emits whatever results are next in order.
    pub(crate) fn submit(
        &mut self,
        job: J,
        emit: &mut dyn FnMut(R) -> io::Result<()>,
    ) -> io::Result<()> {
        let index = self.next_submit;
        self.next_submit += 1;
        let Some(pool) = &self.pool else {
            let out = (self.work)(job)?;
            self.next_emit += 1;
            return emit(out);
        };
        let jobs = pool
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("input after the end"))?;
        let limit = pool.limit;
        jobs.send((index, job))
            .map_err(|_| io::Error::other("a worker thread stopped"))?;
        while self.next_submit - self.next_emit >= limit {
            self.receive(emit)?;
        }
        Ok(())
    }

    /// Waits for every submitted job and emits the results left, in order.
    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(R) -> io::Result<()>) -> io::Result<()> {
        if let Some(pool) = &mut self.pool {
            pool.jobs = None;
        }
        while self.next_emit < self.next_submit {
            self.receive(emit)?;
        }
        Ok(())
    }

    /// Waits for one result and emits every result that is now next in order.
    fn receive(&mut self, emit: &mut dyn FnMut(R) -> io::Result<()>) -> io::Result<()> {
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        let (index, out) = pool
            .results
            .recv()
            .map_err(|_| io::Error::other("a worker thread stopped"))?;
        self.ready.insert(index, out?);
        while let Some(out) = self.ready.remove(&self.next_emit) {
            emit(out)?;
            self.next_emit += 1;
        }
        Ok(())
    }
}
