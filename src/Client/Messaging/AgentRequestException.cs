using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Messaging;

namespace SecureChannels.Client.Messaging;

/// <summary>How a request failed.</summary>
public enum RequestFailure
{
    /// <summary>No response came within the request's timeout. The responder may still have acted on it.</summary>
    TimedOut,

    /// <summary>The channel ended before the response came. The responder may have acted on it.</summary>
    ChannelClosed,

    /// <summary>The responder answered with a FAULT (<see cref="AgentRequestException.FaultCode"/>).</summary>
    Faulted,

    /// <summary>The response did not decode as the expected type, or named another type.</summary>
    BadResponse,

    /// <summary>This side already waits for as many responses on the channel as it allows.</summary>
    TooManyPending,
}

/// <summary>A request (<see cref="AgentChannel.RequestAsync{TRequest, TResponse}(TRequest, TimeSpan?, CancellationToken)"/>) failed; <see cref="Failure"/> says how.</summary>
public sealed class AgentRequestException : Exception
{
    /// <summary>Creates an error.</summary>
    public AgentRequestException(RequestFailure failure, string message, MessageFaultCode? faultCode = null, ChannelCloseInfo? close = null, Exception? innerException = null, string? faultReason = null)
        : base(message, innerException)
    {
        Failure = failure;
        FaultCode = faultCode;
        FaultReason = faultReason;
        Close = close;
    }

    /// <summary>How the request failed.</summary>
    public RequestFailure Failure { get; }

    /// <summary>The responder's fault code, for <see cref="RequestFailure.Faulted"/>.</summary>
    public MessageFaultCode? FaultCode { get; }

    /// <summary>The responder's reason as it sent it, for <see cref="RequestFailure.Faulted"/>.</summary>
    public string? FaultReason { get; }

    /// <summary>How the channel ended, for <see cref="RequestFailure.ChannelClosed"/>.</summary>
    public ChannelCloseInfo? Close { get; }
}
