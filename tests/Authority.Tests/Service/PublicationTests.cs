using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Authority.Tests.Service;

public sealed class PublicationTests
{
    [Fact]
    public async Task Policies_are_published_centrally_and_evaluated_locally_from_the_newest_version()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var service = await kit.CreateAgentAsync();
        var caller = await kit.CreateAgentAsync();
        await kit.EnrollAsync(caller, "user:alice", ["role=worker"]);
        var book = new PolicyBook();
        var client = await kit.ConnectAsync(service);
        await client.SubscribeAsync(service.Revocations, book);

        var v1 = await kit.Service.PublishPolicyAsync(Caller.Operator(kit.Identity.Identifier), "billing", "subject.role == \"admin\"");
        await AuthorityTestKit.UntilAsync(() => book.FindDocument("billing")?.Document.Version == v1);

        // The enforcement point evaluates the book's policy itself: version 1 denies a worker.
        var denied = await Assert.ThrowsAsync<SecureChannelException>(() => kit.ChannelAsync(caller, $"peer.identifier == \"{service.Identifier}\"", service, book.Find("billing")!.Text));
        Assert.Equal(ChannelErrorCode.AccessDenied, denied.Code);

        var v2 = await kit.Service.PublishPolicyAsync(Caller.Operator(kit.Identity.Identifier), "billing", "subject.role == \"worker\"");
        await AuthorityTestKit.UntilAsync(() => book.FindDocument("billing")?.Document.Version == v2);
        var (initiator, responder) = await kit.ChannelAsync(caller, $"peer.identifier == \"{service.Identifier}\"", service, book.Find("billing")!.Text);
        await AuthorityTestKit.AssertCarriesAsync(initiator, responder);
        Assert.Equal(2UL, v2);
    }

    [Fact]
    public async Task Only_admins_publish_and_a_policy_that_does_not_parse_is_refused()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var admin = await kit.CreateAgentAsync();
        var worker = await kit.CreateAgentAsync();
        await kit.EnrollAsync(admin, "system:ops", ["authority-role=admin"]);
        await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);

        var asAdmin = await kit.ConnectAsync(admin);
        Assert.Equal(1UL, await asAdmin.PublishPolicyAsync("relay-admission", "peer.chain_length >= 1"));
        Assert.Equal(AuthorityErrorCode.Malformed, (await Assert.ThrowsAsync<AuthorityException>(() => asAdmin.PublishPolicyAsync("relay-admission", "peer.chain_length >="))).Code);
        Assert.Equal(AuthorityErrorCode.Malformed, (await Assert.ThrowsAsync<AuthorityException>(() => asAdmin.PublishPolicyAsync(new string('r', 200), "true"))).Code);
        Assert.Equal(AuthorityErrorCode.OutOfRange, (await Assert.ThrowsAsync<AuthorityException>(() => kit.Service.PublishPolicyAsync(Caller.Operator(kit.Identity.Identifier), new string('r', 200), "true"))).Code);
        var asWorker = await kit.ConnectAsync(worker);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asWorker.PublishPolicyAsync("relay-admission", "true"))).Code);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asWorker.QueryAsync(new RegistryQuery(RegistryQueryKind.ActingFor, "user:alice")))).Code);
    }

    [Fact]
    public async Task Pushed_lists_that_are_older_or_badly_signed_are_ignored_and_counted()
    {
        // A hand-played authority: the test writes the pushes itself.
        await using var kit = await AuthorityTestKit.CreateAsync();
        var agent = await kit.CreateAgentAsync();
        using var authorityKey = Curve25519Dh.Instance.GenerateKeyPair();
        var authorityAgent = new AuthorityTestKit.Agent(kit.Identity, authorityKey, await kit.Identity.AttestChannelKeyAsync(authorityKey.PublicKey.ToArray(), TimeSpan.FromDays(1), kit.Time), agent.Anchors, new RevocationRegistry());
        var (agentEnd, authorityEnd) = await kit.ChannelAsync(agent, $"peer.identifier == \"{kit.Identity.Identifier}\"", authorityAgent, "true");
        var client = new AuthorityClient(agentEnd, new AuthorityClientOptions { TimeProvider = kit.Time });
        var subscribing = client.SubscribeAsync(agent.Revocations);
        using (var request = await authorityEnd.ReceiveAsync())
        {
            var subscribe = AuthorityMessage.Decode(request!.Payload.ToArray());
            Assert.Equal(AuthorityMessageType.Subscribe, subscribe.Type);
            await authorityEnd.SendAsync(new AuthorityMessage(AuthorityMessageType.Reply, subscribe.RequestId, []).Encode());
        }

        await subscribing;
        var now = kit.Time.GetUtcNow();
        async Task PushAsync(SignedRevocationList list) => await authorityEnd.SendAsync(new AuthorityMessage(AuthorityMessageType.Revocations, 0, list.Encode()).Encode());
        var five = await SignedRevocationList.SignAsync(new RevocationList(kit.Identity.Identifier, 5, now, [RevocationEntry.ForPrincipal(Principal.Parse("user:a"))]), kit.Identity);
        var four = await SignedRevocationList.SignAsync(new RevocationList(kit.Identity.Identifier, 4, now, []), kit.Identity);
        var forged = five with { Signature = new byte[64] };
        var sixForged = (await SignedRevocationList.SignAsync(new RevocationList(kit.Identity.Identifier, 6, now, []), kit.Identity)) with { Signature = five.Signature };

        await PushAsync(five);
        await AuthorityTestKit.UntilAsync(() => agent.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == 5);
        await PushAsync(four);
        await PushAsync(sixForged);
        await PushAsync(forged);
        await authorityEnd.SendAsync(new byte[] { 0x93, 0x01 });
        await AuthorityTestKit.UntilAsync(() => client.RejectedPushes == 4);

        Assert.Equal(5UL, agent.Revocations.Find(kit.Identity.Identifier)!.List.Sequence);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task A_request_to_an_authority_that_went_away_fails_as_unavailable()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var client = await kit.ConnectAsync(await kit.CreateAgentAsync());
        await kit.Current!.StopAsync();

        await client.Completion.WaitAsync(AuthorityTestKit.Guard);
        var failure = await Assert.ThrowsAsync<AuthorityException>(() => client.RefreshAsync(Credential.NewId()));
        Assert.Equal(AuthorityErrorCode.Unavailable, failure.Code);
        Assert.True(failure.IsTransient);
    }
}
