using MessagePack;
using SecureChannels.Client.Messaging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Messaging;

namespace SecureChannels.Client.Tests;

[MessageType("test.quote.v1")]
[MessagePackObject]
public sealed record Quote([property: Key(0)] string Item, [property: Key(1)] int Cents);

[MessageType("test.invoice.v1")]
[MessagePackObject]
public sealed record Invoice([property: Key(0)] string Item, [property: Key(1)] int Cents, [property: Key(2)] string Number);

[MessageType("test.notice.v1")]
[MessagePackObject]
public sealed record Notice([property: Key(0)] string Text);

/// <summary>Typed messages and requests over a real relay: correlation, timeouts on the fake clock, faults, and bad input.</summary>
public sealed class MessagingTests
{
    private const string Credentialed = "peer.chain_length >= 1";

    [Fact]
    public async Task Bytes_typed_messages_and_requests_share_one_ordered_channel_and_responses_find_their_requests()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;
        await using var __ = accepted;

        // The worker answers each quote with an invoice, in the order the quotes arrive.
        var serving = Task.Run(async () =>
        {
            var seen = new List<string>();
            await foreach (var message in accepted.ReceiveAllAsync())
            {
                using (message)
                {
                    if (message.Is<Quote>())
                    {
                        var quote = message.Deserialize<Quote>();
                        Assert.True(message.IsRequest);
                        await message.RespondAsync(new Invoice(quote.Item, quote.Cents, $"INV-{quote.Cents}"));
                        seen.Add($"quote {quote.Item}");
                    }
                    else if (message.Kind == MessageKind.Bytes)
                    {
                        seen.Add($"bytes {System.Text.Encoding.UTF8.GetString(message.Payload.Span)}");
                    }
                    else
                    {
                        seen.Add($"notice {message.Deserialize<Notice>().Text}");
                    }
                }
            }

            return seen;
        });

        await opened.SendAsync("first"u8.ToArray());
        var requests = Enumerable.Range(1, 20).Select(i => opened.RequestAsync<Quote, Invoice>(new Quote($"item-{i}", i * 100))).ToList();
        await opened.SendMessageAsync(new Notice("last"));
        var invoices = await Task.WhenAll(requests).WaitAsync(ClientTestKit.Guard);

        for (var i = 1; i <= 20; i++)
        {
            Assert.Equal(new Invoice($"item-{i}", i * 100, $"INV-{i * 100}"), invoices[i - 1]);
        }

        await opened.CloseAsync().WaitAsync(ClientTestKit.Guard);
        var seen = await serving.WaitAsync(ClientTestKit.Guard);
        Assert.Equal(22, seen.Count);
        Assert.Equal("bytes first", seen[0]);
        Assert.Equal("notice last", seen[^1]);
    }

    [Fact]
    public async Task A_request_without_an_answer_times_out_on_the_clock_and_its_late_answer_is_dropped()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;
        await using var __ = accepted;

        var asking = opened.RequestAsync<Quote, Invoice>(new Quote("slow", 1), TimeSpan.FromSeconds(5));
        using var held = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
        Assert.NotNull(held);
        Assert.Equal(TimeSpan.FromSeconds(5), held.Timeout);
        Assert.False(asking.IsCompleted);

        kit.Time.Advance(TimeSpan.FromSeconds(5));
        var timedOut = await Assert.ThrowsAsync<AgentRequestException>(() => asking.WaitAsync(ClientTestKit.Guard));
        Assert.Equal(RequestFailure.TimedOut, timedOut.Failure);

        // The answer comes too late: it matches nothing, and the channel goes on serving the next request.
        await held.RespondAsync(new Invoice("slow", 1, "late"));
        var next = opened.RequestAsync<Quote, Invoice>(new Quote("fast", 2));
        using (var request = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))
        {
            await request!.RespondAsync(new Invoice("fast", 2, "on time"));
        }

        Assert.Equal("on time", (await next.WaitAsync(ClientTestKit.Guard)).Number);
    }

    [Fact]
    public async Task Faults_unanswered_requests_wrong_response_types_and_cancellation_are_typed()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;
        await using var __ = accepted;

        var failing = opened.RequestAsync<Quote, Invoice>(new Quote("bad", -1));
        using (var request = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))
        {
            await request!.FailAsync(MessageFaultCode.BadRequest, "negative amount");
            await Assert.ThrowsAsync<InvalidOperationException>(() => request.RespondAsync(new Invoice("bad", -1, "x")).AsTask());
        }

        var faulted = await Assert.ThrowsAsync<AgentRequestException>(() => failing.WaitAsync(ClientTestKit.Guard));
        Assert.Equal(RequestFailure.Faulted, faulted.Failure);
        Assert.Equal(MessageFaultCode.BadRequest, faulted.FaultCode);
        Assert.Equal("negative amount", faulted.FaultReason);

        // Disposed without an answer: the requester hears Unhandled at once, not at its timeout.
        var ignored = opened.RequestAsync<Quote, Invoice>(new Quote("ignored", 1));
        (await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))!.Dispose();
        var unhandled = await Assert.ThrowsAsync<AgentRequestException>(() => ignored.WaitAsync(ClientTestKit.Guard));
        Assert.Equal(MessageFaultCode.Unhandled, unhandled.FaultCode);

        // An answer of another type than asked for.
        var mistyped = opened.RequestAsync<Quote, Invoice>(new Quote("mistyped", 1));
        using (var request = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))
        {
            Assert.Throws<AgentMessageException>(() => request!.Deserialize<Notice>());
            await request!.RespondAsync(new Notice("not an invoice"));
        }

        Assert.Equal(RequestFailure.BadResponse, (await Assert.ThrowsAsync<AgentRequestException>(() => mistyped.WaitAsync(ClientTestKit.Guard))).Failure);

        // A cancelled request stops waiting; its answer is then dropped.
        using var cancel = new CancellationTokenSource();
        var cancelled = opened.RequestAsync<Quote, Invoice>(new Quote("cancelled", 1), cancellationToken: cancel.Token);
        using var pending = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(ClientTestKit.Guard));
        await pending!.RespondAsync(new Invoice("cancelled", 1, "nobody waits"));
        await ClientTestKit.AssertCarriesAsync(opened, accepted);
    }

    [Fact]
    public async Task Requests_pending_when_the_channel_ends_fail_with_the_reason_and_later_ones_fail_at_once()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;

        var waiting = opened.RequestAsync<Quote, Invoice>(new Quote("never", 1));
        using (await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))
        {
            await accepted.DisposeAsync();
        }

        var lost = await Assert.ThrowsAsync<AgentRequestException>(() => waiting.WaitAsync(ClientTestKit.Guard));
        Assert.Equal(RequestFailure.ChannelClosed, lost.Failure);
        Assert.Equal(ChannelErrorCode.GoingAway, lost.Close!.Code);
        var after = await Assert.ThrowsAsync<AgentRequestException>(() => opened.RequestAsync<Quote, Invoice>(new Quote("after", 1)).WaitAsync(ClientTestKit.Guard));
        Assert.Equal(RequestFailure.ChannelClosed, after.Failure);
    }

    [Fact]
    public async Task A_request_fails_as_soon_as_the_channel_ends_even_behind_a_full_receive_queue()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;

        // Alice reads nothing: her receive queue fills and her receive loop waits for room.
        for (var i = 0; i < AgentChannel.ReceiveQueueCapacity + 6; i++)
        {
            await accepted.SendAsync(BitConverter.GetBytes(i));
        }

        var waiting = opened.RequestAsync<Quote, Invoice>(new Quote("behind the queue", 1));
        var held = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
        await accepted.DisposeAsync();

        var lost = await Assert.ThrowsAsync<AgentRequestException>(() => waiting.WaitAsync(ClientTestKit.Guard));
        Assert.Equal(RequestFailure.ChannelClosed, lost.Failure);
        held!.Dispose();

        // Nothing that arrived is lost: every message, then the reason.
        for (var i = 0; i < AgentChannel.ReceiveQueueCapacity + 6; i++)
        {
            using var message = await opened.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
            Assert.Equal(i, BitConverter.ToInt32(message!.Payload.Span));
        }

        Assert.Equal(ChannelErrorCode.GoingAway, (await Assert.ThrowsAsync<SecureChannelException>(() => opened.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))).Code);
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 0x09 })]
    [InlineData(new byte[] { 0x01, 0x91 })]
    [InlineData(new byte[] { 0x02, 0x95, 0x00, 0xa1, 0x71, 0x01, 0xc4, 0x10 })]
    [InlineData(new byte[] { 0x04, 0x93, 0x01, 0x00, 0xa0 })]
    public async Task A_peer_that_sends_a_malformed_agent_message_is_cut_with_a_protocol_error(byte[] malformed)
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;
        await using var __ = accepted;

        await opened.SendAsync("well formed"u8.ToArray());
        await opened.Channel.SendAsync(malformed); // beneath the message layer: raw channel bytes
        using (var first = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))
        {
            Assert.Equal("well formed"u8.ToArray(), first!.Payload.ToArray());
        }

        var cut = await Assert.ThrowsAsync<SecureChannelException>(() => accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard));
        Assert.Equal(ChannelErrorCode.ProtocolError, cut.Code);
        var seenByOpener = await opened.Completion.WaitAsync(ClientTestKit.Guard);
        Assert.Equal(ChannelErrorCode.ProtocolError, seenByOpener.Code);
        Assert.True(seenByOpener.FromPeer);
    }

    [Fact]
    public async Task A_body_that_does_not_decode_is_a_typed_error_for_the_reader_and_the_channel_goes_on()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var (opened, accepted) = await OpenPairAsync(kit);
        await using var _ = opened;
        await using var __ = accepted;

        // A well-formed header naming Quote, with a body that is a string rather than a Quote.
        var header = new System.Buffers.ArrayBufferWriter<byte>();
        MessageEnvelope.WriteHeader(header, MessageHeader.ForMessage("test.quote.v1"));
        byte[] body = [.. header.WrittenSpan, 0xa3, (byte)'a', (byte)'b', (byte)'c'];
        await opened.Channel.SendAsync(body);
        using (var message = await accepted.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard))
        {
            Assert.True(message!.Is<Quote>());
            Assert.Throws<AgentMessageException>(() => message.Deserialize<Quote>());
        }

        await ClientTestKit.AssertCarriesAsync(opened, accepted);
    }

    // Alice (an orchestrator) opens a channel to bob's billing agent through a relay: both ends.
    private static async Task<(AgentChannel Opened, AgentChannel Accepted)> OpenPairAsync(ClientTestKit kit)
    {
        var relay = await kit.StartRelayAsync();
        var billing = await kit.StartAgentAsync(relay, "user:bob", ["role=billing"], Credentialed);
        var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
        return await ClientTestKit.ConnectAsync(alice, billing);
    }
}
