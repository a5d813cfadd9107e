using System.Buffers;
using System.IO.Pipelines;

namespace SecureChannels.Protocol.Circuits;

/// <summary>
/// One accepted circuit: an ordered byte stream to another agent through the relay (docs/protocol.md §9.4),
/// normally the transport of an end-to-end <see cref="Channel.SecureChannel"/>. Reading <see cref="Input"/> grants
/// the peer more credit; what is written to <see cref="Output"/> is sent as DATA within the peer's credit;
/// completing <see cref="Output"/> sends CLOSE.
/// </summary>
public sealed class Circuit : IDuplexPipe, IAsyncDisposable
{
    private readonly RelayLink _link;
    private readonly Lock _gate = new();
    private readonly Pipe _inbound;
    private readonly CreditingReader _input;
    private readonly Pipe _outbound;
    private readonly TaskCompletionSource<ReasonFrame> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly uint _receiveWindow;
    private readonly uint _peerWindow;
    private readonly int _maxData;
    private long _receiveAllowed;
    private long _received;
    private long _consumed;
    private long _consumedSinceCredit;
    private long _sendCredit;
    private TaskCompletionSource? _creditWaiter;
    private bool _closeSent;
    private bool _closeReceived;
    private bool _inputCompleted;
    private ReasonFrame? _end;
    private Task _pump = Task.CompletedTask;

    internal Circuit(RelayLink link, uint id, string address, string? opener, string? principal, IReadOnlyList<string> via, uint receiveWindow, uint peerWindow, uint maxData)
    {
        _link = link;
        Id = id;
        Address = address;
        Opener = opener;
        Principal = principal;
        Via = via;
        _receiveWindow = receiveWindow;
        _receiveAllowed = receiveWindow;
        _peerWindow = peerWindow;
        _sendCredit = peerWindow;
        _maxData = (int)Math.Min(maxData, (uint)Array.MaxLength - RelayLimits.CircuitHeaderLength);

        // Flow control, not the pipe, bounds what is buffered here: at most one window, which this side granted.
        _inbound = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        _input = new CreditingReader(this, _inbound.Reader);
        _outbound = new Pipe(new PipeOptions(useSynchronizationContext: false));
    }

    /// <summary>The circuit id on this hop (odd when this side opened it, even when the relay did).</summary>
    public uint Id { get; }

    /// <summary>The address as this side opened it, or as the opener addressed this side.</summary>
    public string Address { get; }

    /// <summary>Who opened the circuit as the first relay verified it; null for circuits this side opened.</summary>
    public string? Opener { get; }

    /// <summary>The opener's principal as the first relay verified it; null for circuits this side opened or when it has none.</summary>
    public string? Principal { get; }

    /// <summary>The relays the circuit crossed, nearest to the opener first; empty for circuits this side opened.</summary>
    public IReadOnlyList<string> Via { get; }

    /// <summary>
    /// The bytes the peer sends. Completes when the peer sent CLOSE; throws <see cref="RelayException"/> once the
    /// circuit is reset (no byte is delivered after a reset).
    /// </summary>
    public PipeReader Input => _input;

    /// <summary>The bytes to send. Complete it to send CLOSE; completing it with an exception resets the circuit (<see cref="RelayErrorCode.InternalError"/>).</summary>
    public PipeWriter Output => _outbound.Writer;

    /// <summary>
    /// Completes when the circuit has ended on this side: <see cref="RelayErrorCode.Normal"/> once both sides sent
    /// CLOSE, otherwise the reset's (or the hop's) code and reason.
    /// </summary>
    public Task<ReasonFrame> Completion => _completion.Task;

    /// <summary>
    /// Completes once <see cref="Output"/> was completed and everything written to it was sent, CLOSE last, or once the
    /// circuit ended. Complete Output, then wait for this (bounded) before <see cref="DisposeAsync"/> to let the last
    /// bytes out: a reset travels at once and would overtake bytes still waiting for credit.
    /// </summary>
    public Task Sent => _pump;

    /// <summary>Ends the circuit now, both ways, telling the peer <paramref name="code"/> and <paramref name="reason"/> (for people). Does nothing once ended.</summary>
    public async ValueTask ResetAsync(RelayErrorCode code, string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        var frame = new ReasonFrame(code, RelayFrames.CutReason(reason));
        if (TryEnd(frame, new RelayException(code, $"The circuit was reset ({code}): {reason}")))
        {
            await _link.TrySendAsync(RelayFrames.CircuitReason(RelayFrameType.Reset, Id, code, frame.Reason)).ConfigureAwait(false);
            _link.Release(Id, this);
        }
    }

    /// <summary>Resets the circuit if it has not ended, waits for its sender, and frees its id.</summary>
    public async ValueTask DisposeAsync()
    {
        await ResetAsync(RelayErrorCode.Normal, "The circuit was disposed.").ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        _link.Release(Id, this);
    }

    /// <summary>Starts sending (once the circuit is accepted and in the link's table).</summary>
    internal void Start() => _pump = Task.Run(PumpAsync, CancellationToken.None);

    /// <summary>A DATA body from the receive loop: copied once into the inbound pipe, never awaiting the reader.</summary>
    internal void OnData(ReadOnlySpan<byte> body)
    {
        uint increment = 0;
        bool overflow;
        lock (_gate)
        {
            if (_end is not null)
            {
                return;
            }

            if (_closeReceived)
            {
                throw RelayLink.Violation($"DATA on circuit {Id} after its CLOSE");
            }

            overflow = _received + body.Length > _receiveAllowed;
            if (!overflow)
            {
                _received += body.Length;
                if (_inputCompleted)
                {
                    // Nobody reads any more: the bytes are dropped, and count as consumed so the sender is not stalled.
                    increment = ConsumeLocked(body.Length);
                }
                else
                {
                    // The pipe never pauses (pauseWriterThreshold 0), so this flush completes at once.
                    _inbound.Writer.Write(body);
                    var flush = _inbound.Writer.FlushAsync(CancellationToken.None);
                    if (!flush.IsCompletedSuccessfully)
                    {
                        _ = flush.AsTask();
                    }
                }
            }
        }

        if (overflow)
        {
            ResetFromLoop(RelayErrorCode.FlowControlViolation, "DATA beyond the credit this side granted.");
        }
        else if (increment > 0)
        {
            _link.Post(RelayFrames.WindowFrame(RelayFrameType.Credit, Id, increment));
        }
    }

    internal void OnCredit(uint increment)
    {
        TaskCompletionSource? waiter;
        bool violation;
        lock (_gate)
        {
            if (_end is not null || _closeSent)
            {
                return;
            }

            _sendCredit += increment;
            violation = _sendCredit > _peerWindow;
            waiter = _creditWaiter;
            _creditWaiter = null;
        }

        waiter?.TrySetResult();
        if (violation)
        {
            ResetFromLoop(RelayErrorCode.FlowControlViolation, "CREDIT beyond the window.");
        }
    }

    internal void OnClose()
    {
        bool finished;
        lock (_gate)
        {
            if (_end is not null)
            {
                return;
            }

            if (_closeReceived)
            {
                throw RelayLink.Violation($"a second CLOSE on circuit {Id}");
            }

            _closeReceived = true;
            _inbound.Writer.Complete();
            finished = _closeSent;
        }

        if (finished)
        {
            Finish();
        }
    }

    internal void OnReset(ReasonFrame reason)
    {
        if (TryEnd(reason, new RelayException(reason.Code, $"The peer reset the circuit ({reason.Code}): {reason.Reason}", fromPeer: true)))
        {
            _link.Release(Id, this);
        }
    }

    /// <summary>The hop ended: fails the circuit without telling anyone (there is nobody to tell).</summary>
    internal void Abort(RelayException failure) => TryEnd(new ReasonFrame(failure.Code, RelayFrames.CutReason(failure.Message)), failure);

    private void ResetFromLoop(RelayErrorCode code, string reason)
    {
        if (TryEnd(new ReasonFrame(code, reason), new RelayException(code, $"The circuit was reset ({code}): {reason}")))
        {
            _link.Post(RelayFrames.CircuitReason(RelayFrameType.Reset, Id, code, reason));
            _link.Release(Id, this);
        }
    }

    private void Finish()
    {
        if (TryEnd(new ReasonFrame(RelayErrorCode.Normal, "closed"), null))
        {
            _link.Release(Id, this);
        }
    }

    /// <summary>Ends the circuit once: the reader sees <paramref name="readerError"/> (unless the peer's CLOSE came first) and the sender stops.</summary>
    private bool TryEnd(ReasonFrame end, Exception? readerError)
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            if (_end is not null)
            {
                return false;
            }

            _end = end;
            _inbound.Writer.Complete(readerError);
            waiter = _creditWaiter;
            _creditWaiter = null;
        }

        waiter?.TrySetResult();
        _outbound.Reader.CancelPendingRead();
        _completion.TrySetResult(end);
        return true;
    }

    /// <summary>Counts consumed bytes; returns the CREDIT increment to send (0 for none yet). Caller holds the gate.</summary>
    private uint ConsumeLocked(long count)
    {
        _consumed += count;
        if (_end is not null || _closeReceived)
        {
            return 0;
        }

        _consumedSinceCredit += count;
        if (_consumedSinceCredit < Math.Max(1, _receiveWindow / 2))
        {
            return 0;
        }

        // Granted but unreceived = allowed - received <= window, since credit only follows consumption.
        var increment = (uint)_consumedSinceCredit;
        _receiveAllowed += increment;
        _consumedSinceCredit = 0;
        return increment;
    }

    private void OnConsumed(long count)
    {
        if (count == 0)
        {
            return;
        }

        uint increment;
        lock (_gate)
        {
            increment = ConsumeLocked(count);
        }

        if (increment > 0)
        {
            _link.Post(RelayFrames.WindowFrame(RelayFrameType.Credit, Id, increment));
        }
    }

    private void OnInputCompleted()
    {
        uint increment;
        lock (_gate)
        {
            _inputCompleted = true;
            increment = ConsumeLocked(_received - _consumed);
        }

        if (increment > 0)
        {
            _link.Post(RelayFrames.WindowFrame(RelayFrameType.Credit, Id, increment));
        }
    }

    private async Task PumpAsync()
    {
        var reader = _outbound.Reader;
        var failed = false;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await reader.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is not RelayException)
                {
                    // The application completed Output with an error.
                    failed = true;
                    break;
                }

                var buffer = result.Buffer;
                if (result.IsCanceled || IsEnded)
                {
                    reader.AdvanceTo(buffer.Start);
                    break;
                }

                if (buffer.IsEmpty)
                {
                    reader.AdvanceTo(buffer.End);
                    if (result.IsCompleted)
                    {
                        await SendCloseAsync().ConfigureAwait(false);
                        break;
                    }

                    continue;
                }

                var sent = await SendDataAsync(buffer).ConfigureAwait(false);
                reader.AdvanceTo(buffer.GetPosition(sent));
                if (sent == 0)
                {
                    break;
                }
            }
        }
        catch (RelayException e)
        {
            // The hop failed under us; the link ends every circuit too, this only makes it immediate.
            if (TryEnd(new ReasonFrame(e.Code, RelayFrames.CutReason(e.Message)), e))
            {
                _link.Release(Id, this);
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }

        if (failed)
        {
            await ResetAsync(RelayErrorCode.InternalError, "The sending application failed.").ConfigureAwait(false);
        }
    }

    /// <summary>Sends one DATA frame from the front of <paramref name="buffer"/> once credit allows; returns its length, 0 when the circuit ended.</summary>
    private async ValueTask<int> SendDataAsync(ReadOnlySequence<byte> buffer)
    {
        var credit = await WaitForCreditAsync().ConfigureAwait(false);
        if (credit == 0)
        {
            return 0;
        }

        var length = (int)Math.Min(Math.Min(buffer.Length, _maxData), credit);
        var frame = ArrayPool<byte>.Shared.Rent(RelayLimits.CircuitHeaderLength + length);
        try
        {
            RelayFrames.WriteDataHeader(frame, Id);
            buffer.Slice(0, length).CopyTo(frame.AsSpan(RelayLimits.CircuitHeaderLength));
            lock (_gate)
            {
                if (_end is not null)
                {
                    return 0;
                }

                _sendCredit -= length;
            }

            await _link.SendAsync(frame.AsMemory(0, RelayLimits.CircuitHeaderLength + length)).ConfigureAwait(false);
            return length;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    private async Task SendCloseAsync()
    {
        await _link.SendAsync(RelayFrames.Close(Id)).ConfigureAwait(false);
        bool finished;
        lock (_gate)
        {
            _closeSent = true;
            finished = _closeReceived && _end is null;
        }

        if (finished)
        {
            Finish();
        }
    }

    /// <summary>The current send credit, waiting (without spinning) for CREDIT while it is 0; 0 once the circuit ended.</summary>
    private async ValueTask<long> WaitForCreditAsync()
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_end is not null)
                {
                    return 0;
                }

                if (_sendCredit > 0)
                {
                    return _sendCredit;
                }

                _creditWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _creditWaiter.Task;
            }

            await wait.ConfigureAwait(false);
        }
    }

    private bool IsEnded
    {
        get
        {
            lock (_gate)
            {
                return _end is not null;
            }
        }
    }

    /// <summary>The application's view of the inbound pipe: counts what it consumes, so CREDIT follows consumption.</summary>
    private sealed class CreditingReader(Circuit circuit, PipeReader inner) : PipeReader
    {
        private ReadOnlySequence<byte> _last;

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            _last = result.Buffer;
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            _last = result.Buffer;
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            var count = _last.Slice(_last.Start, consumed).Length;
            inner.AdvanceTo(consumed, examined);
            _last = default;
            circuit.OnConsumed(count);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            circuit.OnInputCompleted();
        }
    }
}
