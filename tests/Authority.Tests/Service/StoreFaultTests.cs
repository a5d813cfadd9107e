using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Storage;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

public sealed class StoreFaultTests
{
    private static TicketRequest Ticket() => new(Principal.Parse("user:alice"), AttributeSet.Parse(["role=worker"]), TimeSpan.Zero, TimeSpan.Zero, 0);

    [Fact]
    public async Task An_unreachable_store_is_retried_with_back_off_and_the_write_then_lands_once()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await using var store = new FlakyStore(new SqliteAuthorityStore(kit.DatabasePath));
        await kit.StartAsync(store: store);
        var ticket = await kit.Service.CreateTicketAsync(Caller.Operator(kit.Identity.Identifier), Ticket());
        var client = await kit.ConnectAsync(await kit.CreateAgentAsync());

        store.FailNextBegins = 2;
        var enrolling = client.EnrollAsync(ticket.Ticket.Reveal());
        await AuthorityTestKit.UntilAsync(() => store.Failures == 1);
        kit.Time.Advance(TimeSpan.FromMilliseconds(100));
        await AuthorityTestKit.UntilAsync(() => store.Failures == 2);
        Assert.False(enrolling.IsCompleted);
        kit.Time.Advance(TimeSpan.FromMilliseconds(200));

        var chain = await enrolling.WaitAsync(AuthorityTestKit.Guard);
        var registered = await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.ActingFor, "user:alice"));
        Assert.Equal(chain.Leaf.Credential.Id, Assert.Single(registered).Id);
    }

    [Fact]
    public async Task A_store_lost_at_commit_leaves_nothing_half_done_and_the_ticket_still_works()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await using var store = new FlakyStore(new SqliteAuthorityStore(kit.DatabasePath));
        await kit.StartAsync(new Dictionary<string, string?> { ["StoreRetries"] = "0" }, store);
        var ticket = await kit.Service.CreateTicketAsync(Caller.Operator(kit.Identity.Identifier), Ticket());
        var client = await kit.ConnectAsync(await kit.CreateAgentAsync());

        store.FailNextCommits = 1;
        var lost = await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(ticket.Ticket.Reveal()));
        Assert.Equal(AuthorityErrorCode.Unavailable, lost.Code);
        Assert.DoesNotContain("Password", lost.Message, StringComparison.OrdinalIgnoreCase);

        // Nothing of the failed enrollment exists: no credential, no audit record, the ticket unused.
        Assert.Empty(await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.ActingFor, "user:alice")));
        Assert.Equal(["ticket"], (await kit.Service.ReadAuditAsync(1, 10)).Select(r => r.Action));
        await (await kit.ConnectAsync(await kit.CreateAgentAsync())).EnrollAsync(ticket.Ticket.Reveal());
        Assert.True((await kit.Service.VerifyAuditAsync()).IsIntact);
    }

    [Fact]
    public async Task An_authority_whose_database_cannot_be_opened_fails_to_start_with_a_typed_error()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        var missing = Path.Combine(kit.Folder, "no-such-folder", "deeper", "authority.db");

        var failure = await Assert.ThrowsAsync<AuthorityException>(() => kit.StartAsync(new Dictionary<string, string?> { ["SqlitePath"] = missing }));

        Assert.Equal(AuthorityErrorCode.Unavailable, failure.Code);
    }

    /// <summary>A store whose connection can be made to fail on demand, as a database that goes away does.</summary>
    private sealed class FlakyStore(IAuthorityStore inner) : IAuthorityStore
    {
        private int _failures;

        public int FailNextBegins { get; set; }

        public int FailNextCommits { get; set; }

        public int Failures => Volatile.Read(ref _failures);

        public Task InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);

        public async Task<IAuthorityTransaction> BeginAsync(bool write, CancellationToken cancellationToken = default)
        {
            if (write && FailNextBegins > 0)
            {
                FailNextBegins--;
                Interlocked.Increment(ref _failures);
                throw new AuthorityStoreException(AuthorityStoreErrorKind.Unavailable, "The database did not answer (test).");
            }

            var transaction = await inner.BeginAsync(write, cancellationToken);
            return write ? new FlakyTransaction(transaction, this) : transaction;
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();

        private sealed class FlakyTransaction(IAuthorityTransaction inner, FlakyStore store) : IAuthorityTransaction
        {
            public Task InsertTicketAsync(TicketRecord ticket, CancellationToken cancellationToken = default) => inner.InsertTicketAsync(ticket, cancellationToken);

            public Task<TicketRecord?> FindTicketAsync(byte[] id, CancellationToken cancellationToken = default) => inner.FindTicketAsync(id, cancellationToken);

            public Task<bool> MarkTicketUsedAsync(byte[] id, string usedBy, DateTimeOffset usedAt, CancellationToken cancellationToken = default) => inner.MarkTicketUsedAsync(id, usedBy, usedAt, cancellationToken);

            public Task InsertCredentialAsync(CredentialRecord credential, CancellationToken cancellationToken = default) => inner.InsertCredentialAsync(credential, cancellationToken);

            public Task<CredentialRecord?> FindCredentialAsync(byte[] id, CancellationToken cancellationToken = default) => inner.FindCredentialAsync(id, cancellationToken);

            public Task<IReadOnlyList<CredentialRecord>> FindChildrenAsync(byte[] parentId, CancellationToken cancellationToken = default) => inner.FindChildrenAsync(parentId, cancellationToken);

            public Task<IReadOnlyList<CredentialRecord>> FindByPrincipalAsync(string principal, DateTimeOffset at, CancellationToken cancellationToken = default) => inner.FindByPrincipalAsync(principal, at, cancellationToken);

            public Task<IReadOnlyList<CredentialRecord>> FindBySubjectAsync(string subject, CancellationToken cancellationToken = default) => inner.FindBySubjectAsync(subject, cancellationToken);

            public Task<StoredDocument?> LatestDocumentAsync(string kind, string resource, CancellationToken cancellationToken = default) => inner.LatestDocumentAsync(kind, resource, cancellationToken);

            public Task<IReadOnlyList<StoredDocument>> LatestDocumentsAsync(string kind, CancellationToken cancellationToken = default) => inner.LatestDocumentsAsync(kind, cancellationToken);

            public Task InsertDocumentAsync(StoredDocument document, CancellationToken cancellationToken = default) => inner.InsertDocumentAsync(document, cancellationToken);

            public Task<AuditRecord?> LastAuditAsync(CancellationToken cancellationToken = default) => inner.LastAuditAsync(cancellationToken);

            public Task AppendAuditAsync(AuditRecord record, CancellationToken cancellationToken = default) => inner.AppendAuditAsync(record, cancellationToken);

            public Task<IReadOnlyList<AuditRecord>> ReadAuditAsync(long fromSequence, int limit, CancellationToken cancellationToken = default) => inner.ReadAuditAsync(fromSequence, limit, cancellationToken);

            public Task CommitAsync(CancellationToken cancellationToken = default)
            {
                if (store.FailNextCommits > 0)
                {
                    store.FailNextCommits--;
                    Interlocked.Increment(ref store._failures);
                    throw new AuthorityStoreException(AuthorityStoreErrorKind.Unavailable, "The connection was lost at commit (test).");
                }

                return inner.CommitAsync(cancellationToken);
            }

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
