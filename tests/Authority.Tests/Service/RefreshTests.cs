using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

public sealed class RefreshTests
{
    [Fact]
    public async Task A_refresh_presented_inside_the_channel_keeps_a_live_channel_open_past_the_old_expiry()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var verifier = await kit.CreateAgentAsync();
        var old = await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);
        var (initiator, responder) = await kit.ChannelAsync(worker, $"peer.identifier == \"{verifier.Identifier}\"", verifier, "subject.role == \"worker\"");

        kit.Time.Advance(TimeSpan.FromMinutes(50));
        var client = await kit.ConnectAsync(worker);
        var fresh = await client.RefreshAsync(old.Leaf.Credential.Id);
        await initiator.UpdateCredentialsAsync([fresh]);
        await AuthorityTestKit.AssertCarriesAsync(initiator, responder);

        kit.Time.Advance(TimeSpan.FromMinutes(40)); // 1 h 30 min: the old credential is 30 minutes gone.
        if (responder.Completion.IsCompleted)
        {
            Assert.Fail($"The channel closed: {await responder.Completion}");
        }

        await AuthorityTestKit.AssertCarriesAsync(initiator, responder);
        await AuthorityTestKit.AssertCarriesAsync(responder, initiator);
        Assert.Equal(fresh.Leaf.Credential.NotAfter, responder.Peer.NotAfter);
        Assert.Equal(old.Leaf.Credential.NotAfter - old.Leaf.Credential.NotBefore, fresh.Leaf.Credential.NotAfter - fresh.Leaf.Credential.NotBefore);
    }

    [Fact]
    public async Task A_refresher_keeps_a_channel_open_across_several_credential_lifetimes()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var verifier = await kit.CreateAgentAsync();
        var first = await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);
        var (initiator, responder) = await kit.ChannelAsync(worker, $"peer.identifier == \"{verifier.Identifier}\"", verifier, "subject.role == \"worker\"");
        var refresher = new CredentialRefresher(_ => kit.ConnectAsync(worker, presentCredentials: false), first, new CredentialRefresherOptions { TimeProvider = kit.Time, Jitter = 0 });
        refresher.Refreshed += async chain => await initiator.UpdateCredentialsAsync([chain]);
        Assert.Equal(first.Leaf.Credential.NotBefore + TimeSpan.FromMinutes(40), refresher.DueAt(first));
        using var stop = new CancellationTokenSource();
        var running = refresher.RunAsync(stop.Token);

        // Three and a half hours of one-hour credentials, a message every five minutes.
        for (var minute = 5; minute <= 210; minute += 5)
        {
            kit.Time.Advance(TimeSpan.FromMinutes(5));

            // Once a refresh is due its timer has fired (no jitter here): let it land before the clock moves on, as it
            // runs on real sockets, and a clock jumping five minutes mid-handshake would time the handshake out.
            await AuthorityTestKit.UntilAsync(() => kit.Time.GetUtcNow() < refresher.DueAt(refresher.Current) || running.IsCompleted);
            Assert.False(running.IsCompleted, running.Exception?.ToString());
            await AuthorityTestKit.AssertCarriesAsync(initiator, responder);
        }

        Assert.True(refresher.Refreshes >= 4, $"{refresher.Refreshes} refreshes");
        Assert.False(responder.Completion.IsCompleted);
        Assert.Equal(refresher.Current.Leaf.Credential.NotAfter, responder.Peer.NotAfter);
        Assert.True(responder.Peer.NotAfter > kit.Time.GetUtcNow());
        await stop.CancelAsync();
        await running.WaitAsync(AuthorityTestKit.Guard);
    }

    [Fact]
    public async Task A_refresher_stops_with_the_refusal_when_its_credential_is_revoked()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var chain = await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);
        var refresher = new CredentialRefresher(_ => kit.ConnectAsync(worker, presentCredentials: false), chain, new CredentialRefresherOptions { TimeProvider = kit.Time });
        var running = refresher.RunAsync(CancellationToken.None);
        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForCredential(chain.Leaf.Credential.Id), "stolen");

        kit.Time.Advance(TimeSpan.FromMinutes(45));

        var refused = await Assert.ThrowsAsync<AuthorityException>(() => running.WaitAsync(AuthorityTestKit.Guard));
        Assert.Equal(AuthorityErrorCode.CredentialRevoked, refused.Code);
        Assert.Equal(0, refresher.Refreshes);
    }

    [Fact]
    public async Task Without_a_refresh_the_channel_closes_when_the_credential_expires()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var verifier = await kit.CreateAgentAsync();
        await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);
        var (initiator, responder) = await kit.ChannelAsync(worker, $"peer.identifier == \"{verifier.Identifier}\"", verifier, "subject.role == \"worker\"");

        // Traffic at 59 minutes keeps the idle timer quiet: what ends the channel is the credential.
        kit.Time.Advance(TimeSpan.FromMinutes(59));
        await AuthorityTestKit.AssertCarriesAsync(initiator, responder);
        kit.Time.Advance(TimeSpan.FromMinutes(2));

        Assert.Equal(ChannelErrorCode.CredentialExpired, (await responder.Completion.WaitAsync(AuthorityTestKit.Guard)).Code);
    }

    [Fact]
    public async Task Refresh_is_refused_for_revoked_foreign_unregistered_delegated_and_expired_credentials()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var other = await kit.CreateAgentAsync();
        var sub = await kit.CreateAgentAsync();
        var chain = await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);
        var otherChain = await kit.EnrollAsync(other, "user:bob", ["role=worker"]);
        var client = await kit.ConnectAsync(worker);

        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => client.RefreshAsync(otherChain.Leaf.Credential.Id))).Code);
        Assert.Equal(AuthorityErrorCode.CredentialUnknown, (await Assert.ThrowsAsync<AuthorityException>(() => client.RefreshAsync(Credential.NewId()))).Code);

        var now = kit.Time.GetUtcNow();
        var delegated = await CredentialIssuer.DelegateAsync(worker.Identity, chain, sub.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(10), 0);
        await client.RegisterDelegationAsync(delegated);
        var subClient = await kit.ConnectAsync(sub);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => subClient.RefreshAsync(delegated.Leaf.Credential.Id))).Code);

        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForCredential(otherChain.Leaf.Credential.Id), "gone");
        var otherClient = await kit.ConnectAsync(other, presentCredentials: false);
        Assert.Equal(AuthorityErrorCode.CredentialRevoked, (await Assert.ThrowsAsync<AuthorityException>(() => otherClient.RefreshAsync(otherChain.Leaf.Credential.Id))).Code);

        kit.Time.Advance(TimeSpan.FromHours(1));
        client = await kit.ConnectAsync(worker, presentCredentials: false);
        Assert.Equal(AuthorityErrorCode.CredentialInvalid, (await Assert.ThrowsAsync<AuthorityException>(() => client.RefreshAsync(chain.Leaf.Credential.Id))).Code);
    }

    [Fact]
    public async Task A_delegation_is_registered_only_by_its_delegator_and_only_below_a_registered_parent()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var orchestrator = await kit.CreateAgentAsync();
        var sub = await kit.CreateAgentAsync();
        var chain = await kit.EnrollAsync(orchestrator, "user:alice", ["role=worker", "tool=a"]);
        var now = kit.Time.GetUtcNow();
        var delegated = await CredentialIssuer.DelegateAsync(orchestrator.Identity, chain, sub.Identifier, AttributeSet.Parse(["tool=a"]), now, now.AddMinutes(10), 0);

        var asSub = await kit.ConnectAsync(sub);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asSub.RegisterDelegationAsync(delegated))).Code);
        var asOrchestrator = await kit.ConnectAsync(orchestrator);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asOrchestrator.RegisterDelegationAsync(chain))).Code);

        // A chain under a credential of another authority does not verify here.
        var stranger = await kit.CreateAgentAsync();
        var foreignRoot = await CredentialIssuer.IssueAsync(stranger.Identity, orchestrator.Identifier, Principal.Parse("user:alice"), AttributeSet.Parse(["tool=a"]), now, now.AddHours(1), 1);
        var foreignChild = await CredentialIssuer.DelegateAsync(orchestrator.Identity, foreignRoot, sub.Identifier, AttributeSet.Parse(["tool=a"]), now, now.AddMinutes(10), 0);
        Assert.Equal(AuthorityErrorCode.CredentialInvalid, (await Assert.ThrowsAsync<AuthorityException>(() => asOrchestrator.RegisterDelegationAsync(foreignChild))).Code);

        await asOrchestrator.RegisterDelegationAsync(delegated);
        await asOrchestrator.RegisterDelegationAsync(delegated); // idempotent
        var below = await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.Below, chain.Leaf.Credential.IdText));
        Assert.Equal(delegated.Leaf.Credential.Id, Assert.Single(below).Id);
        var above = await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.Above, delegated.Leaf.Credential.IdText));
        Assert.Equal([chain.Leaf.Credential.IdText, delegated.Leaf.Credential.IdText], above.Select(e => e.IdText));
        Assert.Null(above[0].ParentIdText);
        Assert.Equal(chain.Leaf.Credential.IdText, above[1].ParentIdText);
    }
}
