//! List RPCs as streams: every list request takes a `page_token` and every list response
//! answers its `next_page_token` (empty on the last page), AIP-158 style.

use futures::Stream;

use crate::proto::complianceiq;
use crate::{Authed, Client, Error};

/// A list request: the page to start from.
pub trait PageRequest: Clone {
    fn set_page_token(&mut self, token: String);
}

/// A list response: its items and where the next page starts.
pub trait Page {
    type Item;
    fn next_page_token(&self) -> &str;
    fn into_items(self) -> Vec<Self::Item>;
}

macro_rules! paged {
    ($($package:ident :: $request:ident => $response:ident { $items:ident: $item:ident }),* $(,)?) => {$(
        impl PageRequest for complianceiq::$package::v1::$request {
            fn set_page_token(&mut self, token: String) {
                self.page_token = token;
            }
        }

        impl Page for complianceiq::$package::v1::$response {
            type Item = complianceiq::$package::v1::$item;
            fn next_page_token(&self) -> &str {
                &self.next_page_token
            }
            fn into_items(self) -> Vec<Self::Item> {
                self.$items
            }
        }
    )*};
}

paged! {
    analysis::ListAnalysisResultsRequest => ListAnalysisResultsResponse { results: AnalysisResult },
    analysis::ListAnalysisJobsRequest => ListAnalysisJobsResponse { jobs: AnalysisJob },
    audit::ListAuditLogsRequest => ListAuditLogsResponse { audit_logs: AuditLog },
    audit::ListSecurityEventsRequest => ListSecurityEventsResponse { security_events: SecurityEvent },
    audit::ListComplianceEventsRequest => ListComplianceEventsResponse { compliance_events: ComplianceEvent },
    audit::ListAuditReportsRequest => ListAuditReportsResponse { audit_reports: AuditReport },
    auth::ListApiKeysRequest => ListApiKeysResponse { api_keys: ApiKey },
    dashboard::ListReportsRequest => ListReportsResponse { reports: Report },
    dashboard::ListReportRunsRequest => ListReportRunsResponse { runs: ReportRun },
    insights::GetInsightHistoryRequest => GetInsightHistoryResponse { entries: InsightHistoryEntry },
    insights::SearchInsightsRequest => SearchInsightsResponse { insights: Insight },
    insights::ListSavedReportsRequest => ListSavedReportsResponse { saved_reports: SavedReport },
    instance::ListInstancesRequest => ListInstancesResponse { instances: Instance },
    instance::ListSyncRunsRequest => ListSyncRunsResponse { sync_runs: SyncRun },
    ml::ListModelsRequest => ListModelsResponse { models: Model },
    notification::ListNotificationsRequest => ListNotificationsResponse { notifications: Notification },
    organization::ListMembersRequest => ListMembersResponse { members: Member },
    organization::ListTeamsRequest => ListTeamsResponse { teams: Team },
    user::ListUsersRequest => ListUsersResponse { users: User },
    user::ListRolesRequest => ListRolesResponse { roles: Role },
    webhook::ListWebhooksRequest => ListWebhooksResponse { webhooks: Webhook },
    webhook::ListWebhookDeliveriesRequest => ListWebhookDeliveriesResponse { deliveries: WebhookDelivery },
    widget::ListWidgetsRequest => ListWidgetsResponse { widgets: Widget },
    widget::ListWidgetTemplatesRequest => ListWidgetTemplatesResponse { templates: WidgetTemplate },
    widget::ListWidgetVersionsRequest => ListWidgetVersionsResponse { versions: WidgetVersion },
    widget::ListWidgetDeploymentsRequest => ListWidgetDeploymentsResponse { deployments: WidgetDeployment },
}

impl Client {
    /// The pages of a list RPC from `request`'s page on, each fetched when the stream is
    /// polled for it, with the retries of [`Client::call`]. The stream ends after the last
    /// page, or with the first error.
    ///
    /// ```no_run
    /// # async fn example(client: complianceiq_sdk::Client) -> Result<(), complianceiq_sdk::Error> {
    /// use complianceiq_sdk::proto::complianceiq::instance::v1::ListInstancesRequest;
    /// use complianceiq_sdk::proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
    /// use futures::TryStreamExt;
    ///
    /// let request = ListInstancesRequest { page_size: 100, ..Default::default() };
    /// let instances: Vec<_> = client
    ///     .items(request, async |channel, request| InstanceServiceClient::new(channel).list_instances(request).await)
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn pages<Req, Resp, F>(
        &self,
        request: Req,
        call: F,
    ) -> impl Stream<Item = Result<Resp, Error>> + use<Req, Resp, F>
    where
        Req: PageRequest,
        Resp: Page,
        F: AsyncFnMut(Authed, Req) -> Result<tonic::Response<Resp>, tonic::Status>,
    {
        let client = self.clone();
        // (the next request, or None once the last page was read; the call)
        futures::stream::unfold((Some(request), call), move |(next, mut call)| {
            let client = client.clone();
            async move {
                let request = next?;
                let page = client.call(async |channel| call(channel, request.clone()).await).await;
                let next = match &page {
                    Ok(page) if !page.next_page_token().is_empty() => {
                        let mut next = request;
                        next.set_page_token(page.next_page_token().to_string());
                        Some(next)
                    }
                    _ => None,
                };
                Some((page, (next, call)))
            }
        })
    }

    /// The items of every page of a list RPC, in order (see [`Client::pages`]).
    pub fn items<Req, Resp, F>(
        &self,
        request: Req,
        call: F,
    ) -> impl Stream<Item = Result<Resp::Item, Error>> + use<Req, Resp, F>
    where
        Req: PageRequest,
        Resp: Page,
        F: AsyncFnMut(Authed, Req) -> Result<tonic::Response<Resp>, tonic::Status>,
    {
        use futures::StreamExt;
        self.pages(request, call).flat_map(|page| {
            let items: Vec<Result<Resp::Item, Error>> = match page {
                Ok(page) => page.into_items().into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            };
            futures::stream::iter(items)
        })
    }
}
