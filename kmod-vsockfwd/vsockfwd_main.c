// SPDX-License-Identifier: GPL-2.0
/*
 * vsockfwd: forward container stdio between pipes and stream sockets
 * (vsock) inside the kernel, so the bytes never bounce through the agent.
 *
 * Each VSOCKFWD_SPLICE creates a forwarder owned by a new anonymous handle
 * file.  The forwarder sits on the wait queues of its two files and a
 * wakeup queues its work item, which moves bytes until the files would
 * block.  The handle's file operations pin the module, so rmmod is refused
 * while any handle is open.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/atomic.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vsockfwd.h>

#include "vsockfwd.h"

#define VSOCKFWD_VERSION	"0.1.0"
/* Bytes one work run may move before it yields the worker to others. */
#define VSOCKFWD_RUN_BUDGET	SZ_1M

static struct workqueue_struct *vsockfwd_wq;

/* Read-only counters under /sys/module/vsockfwd/parameters/. */
static atomic64_t vsockfwd_active;
static atomic64_t vsockfwd_started;
static atomic64_t vsockfwd_finished;
static atomic64_t vsockfwd_bytes;
static atomic64_t vsockfwd_runs;

static int vsockfwd_counter_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(kp->arg));
}

static const struct kernel_param_ops vsockfwd_counter_ops = {
	.get = vsockfwd_counter_get,
};

module_param_cb(active, &vsockfwd_counter_ops, &vsockfwd_active, 0444);
MODULE_PARM_DESC(active, "forwarders whose handle is open");
module_param_cb(started, &vsockfwd_counter_ops, &vsockfwd_started, 0444);
MODULE_PARM_DESC(started, "forwarders created since load");
module_param_cb(finished, &vsockfwd_counter_ops, &vsockfwd_finished, 0444);
MODULE_PARM_DESC(finished, "forwarders ended by EOF, error or cancel");
module_param_cb(bytes, &vsockfwd_counter_ops, &vsockfwd_bytes, 0444);
MODULE_PARM_DESC(bytes, "bytes forwarded since load");
module_param_cb(runs, &vsockfwd_counter_ops, &vsockfwd_runs, 0444);
MODULE_PARM_DESC(runs, "worker runs since load (wakeup cost)");

static int vsockfwd_wake(struct wait_queue_entry *wait, unsigned int mode,
			 int sync, void *key)
{
	struct vsockfwd_watch *w = container_of(wait, struct vsockfwd_watch,
						wait);
	__poll_t events = key_to_poll(key);

	if (!events || (events & w->events))
		queue_work(vsockfwd_wq, &w->fwd->work);
	return 0;
}

struct vsockfwd_poll_table {
	poll_table pt;
	struct vsockfwd *fwd;
	__poll_t events;
	bool overflow;
};

static void vsockfwd_queue_proc(struct file *file, wait_queue_head_t *head,
				poll_table *pt)
{
	struct vsockfwd_poll_table *vpt =
		container_of(pt, struct vsockfwd_poll_table, pt);
	struct vsockfwd *fwd = vpt->fwd;
	struct vsockfwd_watch *w;

	if (fwd->nr_watch == VSOCKFWD_MAX_WATCH) {
		vpt->overflow = true;
		return;
	}
	w = &fwd->watch[fwd->nr_watch++];
	w->fwd = fwd;
	w->head = head;
	w->events = vpt->events;
	init_waitqueue_func_entry(&w->wait, vsockfwd_wake);
	add_wait_queue(head, &w->wait);
}

static int vsockfwd_watch_file(struct vsockfwd *fwd, struct file *file,
			       __poll_t events)
{
	struct vsockfwd_poll_table vpt = {
		.fwd = fwd,
		.events = events | EPOLLERR | EPOLLHUP,
	};

	init_poll_funcptr(&vpt.pt, vsockfwd_queue_proc);
	vpt.pt._key = vpt.events;
	vfs_poll(file, &vpt.pt);
	return vpt.overflow ? -EINVAL : 0;
}

/* Caller holds fwd->lock, or is the only user of @fwd. */
static void vsockfwd_unwatch(struct vsockfwd *fwd)
{
	while (fwd->nr_watch) {
		struct vsockfwd_watch *w = &fwd->watch[--fwd->nr_watch];

		remove_wait_queue(w->head, &w->wait);
	}
}

static void vsockfwd_put_file(struct file **filp)
{
	struct file *file = *filp;

	if (!file)
		return;
	*filp = NULL;
	/*
	 * fput() from a kernel thread is deferred to a work item; release now
	 * so the peer sees EOF before the handle reports the end.
	 */
	if (current->flags & PF_KTHREAD)
		__fput_sync(file);
	else
		fput(file);
}

/* Called once, under fwd->lock, when forwarding ends by EOF or error. */
static void vsockfwd_finish(struct vsockfwd *fwd, int error)
{
	vsockfwd_unwatch(fwd);
	if (!error && (fwd->flags & VSOCKFWD_F_SHUT_WR))
		error = kernel_sock_shutdown(fwd->sock, SHUT_WR);
	vsockfwd_put_file(&fwd->in);
	if (fwd->flags & VSOCKFWD_F_CLOSE_OUT)
		vsockfwd_put_file(&fwd->out);
	vsockfwd_xfer_release(fwd);
	fwd->error = error;
	/* Publishes @bytes and @error to vsockfwd_is_done() readers. */
	smp_store_release(&fwd->done, true);
	atomic64_inc(&vsockfwd_finished);
	wake_up_interruptible_poll(&fwd->done_wait, EPOLLIN | EPOLLRDNORM);
}

static void vsockfwd_run(struct work_struct *work)
{
	struct vsockfwd *fwd = container_of(work, struct vsockfwd, work);
	size_t moved = 0;
	ssize_t ret;

	atomic64_inc(&vsockfwd_runs);
	mutex_lock(&fwd->lock);
	while (!fwd->done && !fwd->cancelled) {
		ret = vsockfwd_xfer(fwd);
		if (ret == -EAGAIN)
			break;
		if (ret < 0 || fwd->eof) {
			vsockfwd_finish(fwd, ret < 0 ? ret : 0);
			break;
		}
		fwd->bytes += ret;
		atomic64_add(ret, &vsockfwd_bytes);
		moved += ret;
		if (moved >= VSOCKFWD_RUN_BUDGET) {
			queue_work(vsockfwd_wq, &fwd->work);
			break;
		}
		cond_resched();
	}
	mutex_unlock(&fwd->lock);
}

static struct vsockfwd *vsockfwd_alloc(void)
{
	struct vsockfwd *fwd = kzalloc(sizeof(*fwd), GFP_KERNEL);

	if (!fwd)
		return NULL;
	mutex_init(&fwd->lock);
	INIT_WORK(&fwd->work, vsockfwd_run);
	init_waitqueue_head(&fwd->done_wait);
	atomic64_inc(&vsockfwd_active);
	return fwd;
}

/* The worker is idle and unwatched (or never started) when this runs. */
static void vsockfwd_free(struct vsockfwd *fwd)
{
	vsockfwd_put_file(&fwd->in);
	vsockfwd_put_file(&fwd->out);
	vsockfwd_xfer_release(fwd);
	mutex_destroy(&fwd->lock);
	kfree(fwd);
	atomic64_dec(&vsockfwd_active);
}

static bool vsockfwd_is_done(struct vsockfwd *fwd)
{
	/* Pairs with vsockfwd_finish(): @bytes and @error are final now. */
	return smp_load_acquire(&fwd->done);
}

/* Closing the handle cancels a running forwarder. */
static int vsockfwd_handle_release(struct inode *inode, struct file *file)
{
	struct vsockfwd *fwd = file->private_data;

	mutex_lock(&fwd->lock);
	fwd->cancelled = true;
	vsockfwd_unwatch(fwd);
	mutex_unlock(&fwd->lock);
	cancel_work_sync(&fwd->work);
	if (!fwd->done)
		atomic64_inc(&vsockfwd_finished);
	vsockfwd_free(fwd);
	return 0;
}

static __poll_t vsockfwd_handle_poll(struct file *file, poll_table *pt)
{
	struct vsockfwd *fwd = file->private_data;

	poll_wait(file, &fwd->done_wait, pt);
	return vsockfwd_is_done(fwd) ? EPOLLIN | EPOLLRDNORM : 0;
}

static ssize_t vsockfwd_handle_read(struct file *file, char __user *ubuf,
				    size_t count, loff_t *ppos)
{
	struct vsockfwd *fwd = file->private_data;
	struct vsockfwd_result res = {};
	int ret;

	if (count < sizeof(res))
		return -EINVAL;
	if (!vsockfwd_is_done(fwd)) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(fwd->done_wait,
					       vsockfwd_is_done(fwd));
		if (ret)
			return ret;
	}
	res.bytes = fwd->bytes;
	res.error = fwd->error;
	if (copy_to_user(ubuf, &res, sizeof(res)))
		return -EFAULT;
	return sizeof(res);
}

static const struct file_operations vsockfwd_handle_fops = {
	.owner = THIS_MODULE,
	.read = vsockfwd_handle_read,
	.poll = vsockfwd_handle_poll,
	.release = vsockfwd_handle_release,
	.llseek = noop_llseek,
};

static int vsockfwd_copy_args(struct vsockfwd_splice *args,
			      const void __user *uarg)
{
	u32 size;
	int ret;

	if (get_user(size, (const u32 __user *)uarg))
		return -EFAULT;
	if (size < VSOCKFWD_SPLICE_SIZE_VER0 || size > PAGE_SIZE)
		return -EINVAL;
	ret = copy_struct_from_user(args, sizeof(*args), uarg, size);
	if (ret)
		return ret;
	if ((args->flags & ~VSOCKFWD_F_ALL) || args->reserved[0] ||
	    args->reserved[1])
		return -EINVAL;
	return 0;
}

/* Take references to both files and decide the direction. */
static int vsockfwd_attach(struct vsockfwd *fwd,
			   const struct vsockfwd_splice *args)
{
	struct pipe_inode_info *in_pipe, *out_pipe;
	struct socket *in_sock, *out_sock;

	fwd->in = fget(args->in_fd);
	fwd->out = fget(args->out_fd);
	if (!fwd->in || !fwd->out)
		return -EBADF;
	if (!(fwd->in->f_mode & FMODE_READ) ||
	    !(fwd->out->f_mode & FMODE_WRITE))
		return -EBADF;

	in_pipe = vsockfwd_pipe_of(fwd->in);
	out_pipe = vsockfwd_pipe_of(fwd->out);
	in_sock = vsockfwd_stream_sock_of(fwd->in);
	out_sock = vsockfwd_stream_sock_of(fwd->out);
	if (in_pipe && out_sock) {
		fwd->pipe = in_pipe;
		fwd->sock = out_sock;
		fwd->to_sock = true;
	} else if (in_sock && out_pipe) {
		fwd->pipe = out_pipe;
		fwd->sock = in_sock;
	} else {
		return -EINVAL;
	}
	if ((args->flags & VSOCKFWD_F_SHUT_WR) && !fwd->to_sock)
		return -EINVAL;
	fwd->flags = args->flags;
	return 0;
}

static int vsockfwd_start(struct vsockfwd *fwd)
{
	int ret;

	ret = vsockfwd_watch_file(fwd, fwd->in, EPOLLIN | EPOLLRDNORM |
				  EPOLLRDHUP);
	if (!ret)
		ret = vsockfwd_watch_file(fwd, fwd->out, EPOLLOUT |
					  EPOLLWRNORM);
	if (ret)
		return ret;
	atomic64_inc(&vsockfwd_started);
	queue_work(vsockfwd_wq, &fwd->work);
	return 0;
}

static long vsockfwd_splice(const void __user *uarg)
{
	struct vsockfwd_splice args;
	struct vsockfwd *fwd;
	struct file *handle;
	int fd, ret;

	ret = vsockfwd_copy_args(&args, uarg);
	if (ret)
		return ret;
	fwd = vsockfwd_alloc();
	if (!fwd)
		return -ENOMEM;
	ret = vsockfwd_attach(fwd, &args);
	if (ret)
		goto err_free;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}
	handle = anon_inode_getfile("[vsockfwd]", &vsockfwd_handle_fops, fwd,
				    O_RDONLY);
	if (IS_ERR(handle)) {
		ret = PTR_ERR(handle);
		goto err_put_fd;
	}
	/* From here on the handle owns @fwd: its release undoes the rest. */
	ret = vsockfwd_start(fwd);
	if (ret) {
		fput(handle);
		put_unused_fd(fd);
		return ret;
	}
	fd_install(fd, handle);
	return fd;

err_put_fd:
	put_unused_fd(fd);
err_free:
	vsockfwd_free(fwd);
	return ret;
}

/*
 * The size bits of the command follow the caller's struct version; the
 * struct's own size field is what counts, so they are not compared.
 */
static long vsockfwd_dev_ioctl(struct file *file, unsigned int cmd,
			       unsigned long arg)
{
	if (_IOC_TYPE(cmd) != VSOCKFWD_IOC_MAGIC ||
	    _IOC_NR(cmd) != _IOC_NR(VSOCKFWD_SPLICE) ||
	    _IOC_DIR(cmd) != _IOC_WRITE)
		return -ENOTTY;
	return vsockfwd_splice((const void __user *)arg);
}

static const struct file_operations vsockfwd_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = vsockfwd_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice vsockfwd_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vsockfwd",
	.fops = &vsockfwd_dev_fops,
	.mode = 0600,
};

static int __init vsockfwd_init(void)
{
	int ret;

	BUILD_BUG_ON(sizeof(struct vsockfwd_splice) !=
		     VSOCKFWD_SPLICE_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct vsockfwd_result) != 16);

	/*
	 * Per-CPU, not unbound: the work runs on the CPU of whoever woke it
	 * (the producer), with no cross-CPU wakeup per batch.
	 */
	vsockfwd_wq = alloc_workqueue("vsockfwd", 0, 0);
	if (!vsockfwd_wq)
		return -ENOMEM;
	ret = misc_register(&vsockfwd_misc);
	if (ret) {
		destroy_workqueue(vsockfwd_wq);
		return ret;
	}
	return 0;
}

static void __exit vsockfwd_exit(void)
{
	misc_deregister(&vsockfwd_misc);
	destroy_workqueue(vsockfwd_wq);
}

module_init(vsockfwd_init);
module_exit(vsockfwd_exit);

MODULE_DESCRIPTION("Forward stdio between pipes and vsock sockets in the kernel");
MODULE_AUTHOR("The husk authors");
MODULE_VERSION(VSOCKFWD_VERSION);
MODULE_LICENSE("GPL");
