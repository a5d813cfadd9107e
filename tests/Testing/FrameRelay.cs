using System.Buffers;
using System.IO.Pipelines;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Testing;

/// <summary>
/// One direction of a <see cref="FaultyLink"/>: copies length-prefixed frames from one pipe to another, applying
/// a <see cref="FaultPlan"/>, counting frames, and recording the most bytes it ever held (read and not yet passed
/// on, or kept back by a fault). Reads no more than one batch ahead, so a destination that stops reading stops it.
/// </summary>
public sealed class FrameRelay
{
    /// <summary>The safety net for waits on the relay that would hang on a bug; never a timing assumption.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private readonly PipeReader _source;
    private readonly PipeWriter _destination;
    private readonly FaultPlan _plan;
    private readonly LinkCut _link;
    private readonly Lock _lock = new();
    private readonly ArrayBufferWriter<byte>? _seen;
    private readonly ArrayBufferWriter<byte>? _sent;
    private readonly TaskCompletionSource _blocked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _delaying = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<FaultRule, byte[]> _originals = new(ReferenceEqualityComparer.Instance);
    private readonly List<byte[]> _reordered = [];
    private TaskCompletionSource _frameSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _frames;
    private int _faults;
    private long _offset;
    private long _forwarded;
    private long _maxHeld;

    /// <summary>A relay of one direction on its own (a cut ends it alone).</summary>
    public FrameRelay(PipeReader source, PipeWriter destination, FaultPlan? plan = null, bool capture = false)
        : this(source, destination, plan, new LinkCut(), capture)
    {
    }

    internal FrameRelay(PipeReader source, PipeWriter destination, FaultPlan? plan, LinkCut link, bool capture)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        _source = source;
        _destination = destination;
        _plan = plan ?? new FaultPlan();
        _link = link;
        link.Add(this);
        if (capture)
        {
            (_seen, _sent) = (new(), new());
        }

        Completion = Task.Run(RunAsync);
    }

    /// <summary>Ends when this direction ends: its source ended, its destination stopped reading, or the link was cut.</summary>
    public Task Completion { get; }

    /// <summary>Completes the first time a flush towards the destination does not complete at once: the reader stopped reading.</summary>
    public Task Blocked => _blocked.Task;

    /// <summary>Completes the first time a delay holds a frame back (its gate still closed).</summary>
    public Task Delaying => _delaying.Task;

    /// <summary>How many times a rule of the plan applied to a frame: zero means the plan never found its frame.</summary>
    public int FaultsApplied => Volatile.Read(ref _faults);

    /// <summary>Frames read from the source so far.</summary>
    public int Frames => Volatile.Read(ref _frames);

    /// <summary>Bytes written to the destination so far.</summary>
    public long ForwardedBytes => Interlocked.Read(ref _forwarded);

    /// <summary>The most bytes this direction ever held at once: read from the source and not yet consumed, plus frames a fault kept back.</summary>
    public long MaxHeldBytes => Interlocked.Read(ref _maxHeld);

    /// <summary>Completes once <paramref name="count"/> frames have been read from the source (and passed on or not).</summary>
    public async Task WaitForFramesAsync(int count)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _frameSignal);
            if (Frames >= count)
            {
                return;
            }

            await signal.Task.WaitAsync(Guard).ConfigureAwait(false);
        }
    }

    /// <summary>Every byte read from the source and every byte sent on (only when the link was made to capture).</summary>
    public (byte[] Seen, byte[] Sent) Capture()
    {
        if (_seen is null || _sent is null)
        {
            throw new InvalidOperationException("This link was not made to capture its traffic.");
        }

        lock (_lock)
        {
            return (_seen.WrittenSpan.ToArray(), _sent.WrittenSpan.ToArray());
        }
    }

    // Wakes whatever this direction waits on, so it notices the cut.
    internal void Interrupt()
    {
        try
        {
            _source.CancelPendingRead();
            _destination.CancelPendingFlush();
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            // Already ended.
        }
    }

    private async Task RunAsync()
    {
        Exception? failure = null;
        try
        {
            while (!_link.IsCut)
            {
                var result = await _source.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var go = true;
                try
                {
                    Held(buffer.Length);
                    while (go && !_link.IsCut && LengthPrefixedFrame.TryRead(ref buffer, out var body))
                    {
                        consumed = buffer.Start;
                        go = await ForwardAsync(body).ConfigureAwait(false);
                    }
                }
                finally
                {
                    _source.AdvanceTo(consumed, buffer.End);
                }

                if (!go || _link.IsCut || !await FlushAsync().ConfigureAwait(false))
                {
                    return;
                }

                if (result.IsCompleted)
                {
                    // The source ended: a frame kept back for a reorder that never came is late, not lost.
                    foreach (var frame in _reordered)
                    {
                        Write(frame);
                    }

                    _reordered.Clear();
                    await FlushAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
        catch (InvalidOperationException)
        {
            // One side went away mid-operation: this direction ends too.
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The source's transport failed: the destination's reader learns it the same way.
            failure = e;
        }
        finally
        {
            await EndAsync(_link.CutError ?? failure).ConfigureAwait(false);
        }
    }

    // Applies the plan to one frame; false when the link was cut.
    private async ValueTask<bool> ForwardAsync(ReadOnlySequence<byte> body)
    {
        var frame = new byte[LengthPrefixedFrame.HeaderLength + body.Length];
        LengthPrefixedFrame.WriteHeader(frame, (int)body.Length);
        body.CopyTo(frame.AsSpan(LengthPrefixedFrame.HeaderLength));
        var context = new FrameContext(_frames, _offset, frame);
        _offset += frame.Length;
        if (_seen is not null)
        {
            lock (_lock)
            {
                _seen.Write(frame);
            }
        }

        try
        {
            foreach (var rule in _plan.Rules)
            {
                if (rule is { Kind: FaultKind.Replay, Original: { } original } && original.Matches(context))
                {
                    _originals[rule] = frame;
                }
            }

            List<byte[]> outputs = [frame];
            var reorder = false;
            foreach (var rule in _plan.Rules.Where(r => r.At.Matches(context)))
            {
                Interlocked.Increment(ref _faults);
                switch (rule.Kind)
                {
                    case FaultKind.Delay:
                        // What came before goes on now; this frame and everything after wait.
                        await FlushAsync().ConfigureAwait(false);
                        if (!rule.Gate!.IsCompleted)
                        {
                            _delaying.TrySetResult();
                        }

                        await Task.WhenAny(rule.Gate, _link.CutTask).ConfigureAwait(false);
                        if (_link.IsCut)
                        {
                            return false;
                        }

                        break;
                    case FaultKind.Cut:
                        await FlushAsync().ConfigureAwait(false);
                        _link.Cut(rule.Error, rule.ResetWriters);
                        return false;
                    case FaultKind.CutMidFrame:
                        foreach (var output in outputs)
                        {
                            Write(output.AsSpan(0, Math.Min(rule.Bytes, output.Length)));
                        }

                        await FlushAsync().ConfigureAwait(false);
                        _link.Cut(rule.Error, rule.ResetWriters);
                        return false;
                    case FaultKind.Drop:
                        outputs.Clear();
                        break;
                    case FaultKind.Duplicate:
                        outputs = [.. outputs.SelectMany(o => new[] { o, (byte[])o.Clone() })];
                        break;
                    case FaultKind.Corrupt:
                        outputs = [.. outputs.Select(o => FaultPlan.Corrupted(rule, context, o))];
                        break;
                    case FaultKind.Truncate:
                        outputs = [.. outputs.Select(o => FaultPlan.Truncated(o, rule.Bytes))];
                        break;
                    case FaultKind.Replace:
                        outputs = [.. outputs.Select(rule.Rewrite!)];
                        break;
                    case FaultKind.Replay when _originals.TryGetValue(rule, out var copy):
                        outputs.Add((byte[])copy.Clone());
                        break;
                    case FaultKind.Reorder:
                        reorder = true;
                        break;
                }
            }

            if (reorder)
            {
                var late = _reordered.ToArray();
                _reordered.Clear();
                _reordered.AddRange(outputs);
                outputs = [.. late];
                Held(0);
            }
            else
            {
                outputs.AddRange(_reordered);
                _reordered.Clear();
            }

            foreach (var output in outputs)
            {
                Write(output);
            }

            return true;
        }
        finally
        {
            Interlocked.Increment(ref _frames);
            Interlocked.Exchange(ref _frameSignal, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        if (_sent is not null)
        {
            lock (_lock)
            {
                _sent.Write(bytes);
            }
        }

        _destination.Write(bytes);
        Interlocked.Add(ref _forwarded, bytes.Length);
    }

    // False when the destination's reader is gone (or the flush was interrupted by a cut).
    private async ValueTask<bool> FlushAsync()
    {
        var flushing = _destination.FlushAsync();
        if (!flushing.IsCompleted)
        {
            _blocked.TrySetResult();
        }

        var result = await flushing.ConfigureAwait(false);
        return !result.IsCompleted && !_link.IsCut;
    }

    private void Held(long bytes)
    {
        var total = bytes + _reordered.Sum(f => (long)f.Length);
        long seen;
        while (total > (seen = Interlocked.Read(ref _maxHeld)) && Interlocked.CompareExchange(ref _maxHeld, total, seen) != seen)
        {
        }
    }

    private async Task EndAsync(Exception? error)
    {
        try
        {
            // A reset reaches the writer on the far side of the source too; otherwise it learns only that nobody reads.
            await _source.CompleteAsync(_link.ResetWriters ? _link.CutError : null).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The transport is gone already.
        }

        try
        {
            await _destination.CompleteAsync(error).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The transport is gone already.
        }
    }
}

/// <summary>What the directions of one link share: whether it was cut, and how.</summary>
internal sealed class LinkCut
{
    private readonly TaskCompletionSource _cut = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<FrameRelay> _directions = [];
    private Exception? _error;

    public bool IsCut => _cut.Task.IsCompleted;

    public Task CutTask => _cut.Task;

    public Exception? CutError => Volatile.Read(ref _error);

    public bool ResetWriters { get; private set; }

    public void Add(FrameRelay direction)
    {
        lock (_directions)
        {
            _directions.Add(direction);
        }
    }

    public void Cut(Exception? error, bool resetWriters = false)
    {
        if (Interlocked.CompareExchange(ref _error, error, null) is null && error is not null)
        {
            ResetWriters = resetWriters;
        }

        if (_cut.TrySetResult())
        {
            FrameRelay[] directions;
            lock (_directions)
            {
                directions = [.. _directions];
            }

            foreach (var direction in directions)
            {
                direction.Interrupt();
            }
        }
    }
}
