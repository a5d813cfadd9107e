using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Messaging;

namespace SecureChannels.Client.Messaging;

/// <summary>A response or fault, with the message whose buffer holds its body.</summary>
internal readonly record struct Reply(MessageHeader Header, ChannelMessage Message, int BodyOffset);

/// <summary>
/// The requests of one channel that wait for their answer, by request id. Ids count up from 1 and wrap, skipping 0 and
/// any id still waiting: a late answer to a request that timed out is dropped, and could be taken for another's only
/// if it arrived after 2^32 further requests.
/// </summary>
internal sealed class PendingRequests(int capacity)
{
    private readonly Dictionary<uint, TaskCompletionSource<Reply>> _waiting = [];
    private readonly Lock _lock = new();
    private uint _last;
    private ChannelCloseInfo? _closed;

    public (uint Id, Task<Reply> Reply) Add()
    {
        var waiter = new TaskCompletionSource<Reply>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_closed is not null)
            {
                throw ChannelClosed(_closed);
            }

            if (_waiting.Count >= capacity)
            {
                throw new AgentRequestException(RequestFailure.TooManyPending, $"{capacity} requests already wait for their response on this channel.");
            }

            do
            {
                _last = _last == uint.MaxValue ? 1 : _last + 1;
            }
            while (_waiting.ContainsKey(_last));

            _waiting.Add(_last, waiter);
            return (_last, waiter.Task);
        }
    }

    /// <summary>Hands <paramref name="reply"/> to its waiter; false if none waits for it (it timed out or was never sent).</summary>
    public bool Complete(Reply reply)
    {
        TaskCompletionSource<Reply>? waiter;
        lock (_lock)
        {
            if (!_waiting.Remove(reply.Header.RequestId, out waiter))
            {
                return false;
            }
        }

        return waiter.TrySetResult(reply);
    }

    /// <summary>Stops waiting for <paramref name="id"/>; false if its answer was already handed over.</summary>
    public bool Remove(uint id)
    {
        lock (_lock)
        {
            return _waiting.Remove(id);
        }
    }

    /// <summary>Fails every waiting request, and any added later: the channel ended as <paramref name="close"/> says.</summary>
    public void Close(ChannelCloseInfo close)
    {
        List<TaskCompletionSource<Reply>> waiters;
        lock (_lock)
        {
            _closed ??= close;
            waiters = [.. _waiting.Values];
            _waiting.Clear();
        }

        foreach (var waiter in waiters)
        {
            waiter.TrySetException(ChannelClosed(close));
        }
    }

    private static AgentRequestException ChannelClosed(ChannelCloseInfo close) =>
        new(RequestFailure.ChannelClosed, $"The channel ended ({close.Code}) before the response came: {close.Reason}", close: close);
}
