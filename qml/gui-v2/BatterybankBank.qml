// dbus-batterybank gui-v2 plugin: the members of a battery bank with state, voltage, current, SoC and connection;
// a member opens its limits. Bound to ProductId 0xBA6B (device list > our battery > Battery bank).
import QtQuick
import Victron.VenusOS
import "batterybank-paths.js" as BankPaths

DeviceListPluginPage {
	id: root

	readonly property string serviceUid: device.serviceUid

	title: "Battery bank"

	VeQuickItem { id: nrOfBatteries; uid: root.serviceUid + BankPaths.NR_OF_BATTERIES }
	VeQuickItem { id: series; uid: root.serviceUid + BankPaths.BATTERIES_SERIES }
	VeQuickItem { id: parallel; uid: root.serviceUid + BankPaths.BATTERIES_PARALLEL }

	GradientListView {
		header: SettingsColumn {
			width: parent ? parent.width : 0
			bottomPadding: spacing

			ListText {
				text: "Batteries"
				secondaryText: !nrOfBatteries.valid ? "--"
					: nrOfBatteries.value + (series.valid && parallel.valid
						? " (" + series.value + " in series, " + parallel.value + " in parallel)" : "")
			}
			ListText {
				text: "This battery is not a bank"
				preferredVisible: !nrOfBatteries.valid
			}
		}

		model: VeQItemTableModel {
			uids: [ root.serviceUid + BankPaths.MEMBERS ]
			flags: VeQItemTableModel.AddChildren | VeQItemTableModel.AddNonLeaves | VeQItemTableModel.DontAddItem
		}

		delegate: ListNavigation {
			id: member

			// The model's roles: uid (…/Batteries/<member>) and id (<member>, the config id).
			readonly property string memberUid: model.uid
			readonly property string memberId: model.id

			text: rowProductName.valid && rowProductName.value !== ""
				? memberId + " (" + rowProductName.value + ")" : memberId
			secondaryText: [
				BankPaths.memberState(rowHealth.valid ? rowHealth.value : undefined,
					rowConnected.valid ? rowConnected.value : undefined),
				rowVoltage.valid ? rowVoltage.value.toFixed(2) + "V" : "--",
				rowCurrent.valid ? rowCurrent.value.toFixed(1) + "A" : "--",
				rowSoc.valid ? rowSoc.value.toFixed(0) + "%" : "--"
			].join("  ")
			onClicked: Global.pageManager.pushPage(memberPage, { title: member.memberId, memberUid: member.memberUid })

			VeQuickItem { id: rowConnected; uid: member.memberUid + BankPaths.MEMBER_CONNECTED }
			VeQuickItem { id: rowHealth; uid: member.memberUid + BankPaths.MEMBER_HEALTH }
			VeQuickItem { id: rowProductName; uid: member.memberUid + BankPaths.MEMBER_PRODUCT_NAME }
			VeQuickItem { id: rowVoltage; uid: member.memberUid + BankPaths.MEMBER_VOLTAGE }
			VeQuickItem { id: rowCurrent; uid: member.memberUid + BankPaths.MEMBER_CURRENT }
			VeQuickItem { id: rowSoc; uid: member.memberUid + BankPaths.MEMBER_SOC }
		}
	}

	Component {
		id: memberPage

		Page {
			id: page

			property string memberUid

			GradientListView {
				model: VisibleItemModel {
					ListText {
						text: "State"
						secondaryText: BankPaths.memberState(pageHealth.valid ? pageHealth.value : undefined,
							pageConnected.valid ? pageConnected.value : undefined)
						VeQuickItem { id: pageConnected; uid: page.memberUid + BankPaths.MEMBER_CONNECTED }
						VeQuickItem { id: pageHealth; uid: page.memberUid + BankPaths.MEMBER_HEALTH }
					}
					ListText {
						text: "Position"
						secondaryText: stringNr.valid && position.valid ? "String " + stringNr.value + ", position " + position.value : "--"
						VeQuickItem { id: stringNr; uid: page.memberUid + BankPaths.MEMBER_STRING }
						VeQuickItem { id: position; uid: page.memberUid + BankPaths.MEMBER_POSITION }
					}
					ListQuantity {
						text: "Voltage"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_VOLTAGE
						unit: VenusOS.Units_Volt_DC
					}
					ListQuantity {
						text: "Current"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_CURRENT
						unit: VenusOS.Units_Amp
					}
					ListQuantity {
						text: "State of charge"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_SOC
						unit: VenusOS.Units_Percentage
					}
					ListText {
						text: "Lowest cell voltage"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_MIN_CELL_VOLTAGE
						secondaryText: dataItem.valid ? dataItem.value.toFixed(3) + "V" : "--"
					}
					ListText {
						text: "Highest cell voltage"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_MAX_CELL_VOLTAGE
						secondaryText: dataItem.valid ? dataItem.value.toFixed(3) + "V" : "--"
					}
					ListQuantity {
						text: "Charge Current Limit (CCL)"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_MAX_CHARGE_CURRENT
						unit: VenusOS.Units_Amp
					}
					ListText {
						text: "Charge limited by"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_CHARGE_LIMITATION
					}
					ListQuantity {
						text: "Share of the bank's charge current"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_CHARGE_SHARE
						unit: VenusOS.Units_Percentage
					}
					ListQuantity {
						text: "Discharge Current Limit (DCL)"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_MAX_DISCHARGE_CURRENT
						unit: VenusOS.Units_Amp
					}
					ListText {
						text: "Discharge limited by"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_DISCHARGE_LIMITATION
					}
					ListQuantity {
						text: "Share of the bank's discharge current"
						dataItem.uid: page.memberUid + BankPaths.MEMBER_DISCHARGE_SHARE
						unit: VenusOS.Units_Percentage
					}
				}
			}
		}
	}
}
