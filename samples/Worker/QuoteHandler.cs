using Microsoft.Extensions.Logging;
using Samples.Common;
using SecureChannels.Client;
using SecureChannels.Client.Hosting;
using SecureChannels.Client.Messaging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Messaging;

namespace Samples.Worker;

/// <summary>
/// Serves one channel a peer opened to the worker (one handler per channel, in its own DI scope): answers every
/// <see cref="QuoteRequest"/> with a <see cref="QuoteReply"/> until the peer closes, or the channel ends for a reason
/// such as the peer's credential being revoked. The agent's policy (<c>SecureChannels:Client:Policy</c>) has already
/// admitted the peer when this runs.
/// </summary>
public sealed partial class QuoteHandler(ILogger<QuoteHandler> logger) : IAgentChannelHandler
{
    private const int MaxQuantity = 10_000;

    private static readonly Dictionary<string, decimal> Prices = new(StringComparer.Ordinal)
    {
        ["widget"] = 2.50m,
        ["gadget"] = 12.00m,
        ["gizmo"] = 0.75m,
    };

    public async Task HandleAsync(AgentChannel channel, CancellationToken cancellationToken)
    {
        // What the handshake proved about the peer, not what it claims: whom it acts for, how many links its credential
        // chain has (1: enrolled itself; 2: delegated once, as a sub-agent is), and the attributes granted along it.
        var peer = channel.Peer;
        LogOpened(logger, peer.Identifier, peer.Principal, peer.ChainLength, peer.Attributes, peer.NotAfter);
        try
        {
            await foreach (var message in channel.ReceiveAllAsync(cancellationToken))
            {
                using (message)
                {
                    await AnswerAsync(channel, message, cancellationToken);
                }
            }

            LogClosed(logger, peer.Identifier, ChannelErrorCode.Normal);
        }
        catch (SecureChannelException e)
        {
            // The channel ended with a reason: CredentialRevoked when the authority revoked the peer (the host keeps
            // the agent subscribed to the authority's revocation lists; the channel re-checked the peer when one
            // arrived), CredentialExpired, GoingAway, ...
            LogClosed(logger, peer.Identifier, e.Code);
        }
    }

    private async Task AnswerAsync(AgentChannel channel, AgentMessage message, CancellationToken cancellationToken)
    {
        if (!message.IsRequest)
        {
            return; // Bytes and one-way messages: this worker only answers requests.
        }

        if (!message.Is<QuoteRequest>())
        {
            await message.FailAsync(MessageFaultCode.Unhandled, $"This worker serves {MessageTypeAttribute.NameOf<QuoteRequest>()} only.", cancellationToken);
            return;
        }

        QuoteRequest request;
        try
        {
            request = message.Deserialize<QuoteRequest>();
        }
        catch (AgentMessageException)
        {
            await message.FailAsync(MessageFaultCode.BadRequest, "The body does not decode as a quote request.", cancellationToken);
            return;
        }

        // Authenticated is not well-formed: a peer's fields are checked like any input. The reasons go back to the
        // requester; they hold nothing the requester did not send or may not know.
        if (request.Item is null || !Prices.TryGetValue(request.Item, out var price))
        {
            await message.FailAsync(MessageFaultCode.BadRequest, $"Unknown item; this worker quotes {string.Join(", ", Prices.Keys)}.", cancellationToken);
            return;
        }

        if (request.Quantity is < 1 or > MaxQuantity)
        {
            await message.FailAsync(MessageFaultCode.BadRequest, $"Quantity must be 1 to {MaxQuantity}.", cancellationToken);
            return;
        }

        // Read the peer again rather than keep the one from the handshake: a refreshed credential (CREDENTIAL_UPDATE)
        // replaces it while the channel stays open.
        var peer = channel.Peer;
        var reply = new QuoteReply(request.Item, request.Quantity, price * request.Quantity, peer.Principal.ToString());
        await message.RespondAsync(reply, cancellationToken);
        LogQuoted(logger, peer.Identifier, reply.Quantity, reply.Item, reply.Total, reply.ApprovedFor);
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Channel from {Peer}: acts for {Principal}, chain length {ChainLength}, attributes {Attributes}, valid until {NotAfter:u}")]
    private static partial void LogOpened(ILogger logger, Identifier peer, Principal principal, int chainLength, AttributeSet attributes, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Quoted {Peer}: {Quantity} x {Item} = {Total}, approved for {ApprovedFor}")]
    private static partial void LogQuoted(ILogger logger, Identifier peer, int quantity, string item, decimal total, string approvedFor);

    [LoggerMessage(EventId = 22, Level = LogLevel.Information, Message = "Channel from {Peer} closed: {Code}")]
    private static partial void LogClosed(ILogger logger, Identifier peer, ChannelErrorCode code);
}
