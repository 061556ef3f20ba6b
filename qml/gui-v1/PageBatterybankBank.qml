// dbus-batterybank GUI v1: the members of a battery bank; each row shows the member's state and SoC and opens
// its voltage, current, connection and limits.
import QtQuick 2
import com.victron.velib 1.0
import "utils.js" as Utils
import "batterybank-paths.js" as BankPaths

MbPage {
	id: root

	property string bindPrefix
	property VBusItem nrOfBatteries: VBusItem { bind: Utils.path(root.bindPrefix, BankPaths.NR_OF_BATTERIES) }
	property VBusItem series: VBusItem { bind: Utils.path(root.bindPrefix, BankPaths.BATTERIES_SERIES) }
	property VBusItem parallel: VBusItem { bind: Utils.path(root.bindPrefix, BankPaths.BATTERIES_PARALLEL) }

	title: nrOfBatteries.valid
		? qsTr("Bank: %1 batteries, %2 in series, %3 in parallel").arg(nrOfBatteries.value).arg(series.value).arg(parallel.value)
		: qsTr("Not a battery bank")

	model: VeQItemTableModel {
		uids: [Utils.path("dbus/", root.bindPrefix, BankPaths.MEMBERS)]
		flags: VeQItemTableModel.AddChildren | VeQItemTableModel.AddNonLeaves | VeQItemTableModel.DontAddItem
	}

	delegate: MbSubMenu {
		id: member

		property string memberUid: model.uid
		property string memberId: model.id
		property VBusItem connected: VBusItem { bind: Utils.path(member.memberUid, BankPaths.MEMBER_CONNECTED) }
		property VBusItem health: VBusItem { bind: Utils.path(member.memberUid, BankPaths.MEMBER_HEALTH) }

		description: memberId + ": " + BankPaths.memberState(health.valid ? health.value : undefined,
			connected.valid ? connected.value : undefined)
		item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_SOC)
		subpage: Component {
			MbPage {
				title: member.memberId
				model: VisibleItemModel {
					MbItemValue {
						description: qsTr("Connected")
						item.value: member.connected.valid ? (member.connected.value === 1 ? qsTr("Yes") : qsTr("No")) : "--"
					}
					MbItemValue {
						description: qsTr("State")
						item.value: BankPaths.memberState(member.health.valid ? member.health.value : undefined,
							member.connected.valid ? member.connected.value : undefined)
					}
					MbItemValue {
						description: qsTr("Voltage")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_VOLTAGE)
					}
					MbItemValue {
						description: qsTr("Current")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_CURRENT)
					}
					MbItemValue {
						description: qsTr("State of charge")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_SOC)
					}
					MbItemValue {
						description: qsTr("Lowest cell voltage")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_MIN_CELL_VOLTAGE)
					}
					MbItemValue {
						description: qsTr("Highest cell voltage")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_MAX_CELL_VOLTAGE)
					}
					MbItemValue {
						description: qsTr("Charge Current Limit (CCL)")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_MAX_CHARGE_CURRENT)
					}
					MbItemValue {
						description: qsTr("Charge limited by")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_CHARGE_LIMITATION)
					}
					MbItemValue {
						description: qsTr("Discharge Current Limit (DCL)")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_MAX_DISCHARGE_CURRENT)
					}
					MbItemValue {
						description: qsTr("Discharge limited by")
						item.bind: Utils.path(member.memberUid, BankPaths.MEMBER_DISCHARGE_LIMITATION)
					}
				}
			}
		}
	}
}
